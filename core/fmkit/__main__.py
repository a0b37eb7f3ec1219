"""``python -m fmkit`` runs the command line (also what torchrun launches: ``torchrun -m fmkit train``)."""
from .cli.main import main

raise SystemExit(main())
