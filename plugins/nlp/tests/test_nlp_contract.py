"""fmkit's plugin contract suite, run against fmkit-nlp (its text-files dataset on a small fixture)."""
from pathlib import Path

from fmkit.testing import contract_tests

_DATA = str(Path(__file__).parent / "data" / "contract.csv")
globals().update(contract_tests("nlp", datasets={"text-files": {"train": _DATA}}))
