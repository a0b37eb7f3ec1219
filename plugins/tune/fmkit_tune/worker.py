"""One worker process of ``fmkit tune --workers N``: ``python -m fmkit_tune.worker PLAN.json INDEX``.

It runs trials of the study in ``PLAN.json`` against the study's storage until the study holds its
trials; Ctrl-C / SIGTERM stop the running trial at a step with a checkpoint (exit code 130/143),
and the next ``fmkit tune`` runs it again from there."""
from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> int:
    import optuna

    from fmkit.errors import FmkitError

    from .study import run_worker

    plan_path, index = (argv if argv is not None else sys.argv[1:])[:2]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan = json.loads(open(plan_path, encoding="utf-8").read())
    try:
        run_worker(plan, int(index))
    except KeyboardInterrupt as e:
        return int(getattr(e, "exit_code", 130))
    except FmkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
