"""fmkit-tune trials as nested MLflow runs: one parent run per study, found or made once.

fmkit-tune announces a trial through the environment while it trains it (its public signal, see
its README): ``FMKIT_TUNE_STUDY`` (the study's name), ``FMKIT_TUNE_STUDY_DIR`` (its folder) and
``FMKIT_TUNE_TRIAL`` (the trial's number). Nothing of fmkit-tune is imported.

The parent's id is kept in ``<study folder>/mlflow-parent.json``, made under a file lock so the
worker processes of one study (``--workers N``) share one parent; a study continued later, or on
another machine, finds its parent by the tags ``fmkit.study`` and ``fmkit.study_parent``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fmkit.utils.atomic import atomic_write_text

PARENT_FILE = "mlflow-parent.json"


def study_signal() -> dict | None:
    """``{"study", "dir", "trial"}`` while fmkit-tune trains a trial in this process, else None."""
    study, folder = os.environ.get("FMKIT_TUNE_STUDY"), os.environ.get("FMKIT_TUNE_STUDY_DIR")
    if not study or not folder:
        return None
    return {"study": study, "dir": folder, "trial": os.environ.get("FMKIT_TUNE_TRIAL", "")}


def parent_run_id(client: Any, experiment_id: str, signal: dict, uri: str) -> str:
    """The id of the study's parent run in ``experiment_id`` (made when there is none yet)."""
    folder = Path(signal["dir"])
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".mlflow-parent.lock", "a") as lock:
        _lock(lock)
        try:
            known = _read(folder / PARENT_FILE)
            if known.get("tracking_uri") == uri and known.get("experiment_id") == experiment_id and known.get("run_id"):
                return known["run_id"]
            study = signal["study"].replace("'", "")
            found = client.search_runs([experiment_id], max_results=1, order_by=["attributes.start_time ASC"],
                                       filter_string=f"tags.`fmkit.study` = '{study}' and "
                                                     "tags.`fmkit.study_parent` = 'true'")
            if found:
                run_id = found[0].info.run_id
            else:
                run_id = client.create_run(experiment_id, run_name=f"study {signal['study']}",
                                           tags={"fmkit.study": signal["study"], "fmkit.study_parent": "true",
                                                 "fmkit.study_dir": str(folder.resolve())}).info.run_id
            atomic_write_text(folder / PARENT_FILE, json.dumps(
                {"tracking_uri": uri, "experiment_id": experiment_id, "run_id": run_id}, indent=2) + "\n")
            return run_id
        finally:
            _unlock(lock)


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _lock(f) -> None:
    try:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    except ImportError:  # Windows: workers of one study may each make a parent; search_runs still finds one
        pass


def _unlock(f) -> None:
    try:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except ImportError:
        pass
