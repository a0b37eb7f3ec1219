"""fmkit-mlflow's hooks: the ``mlflow:`` recipe section and the lifecycle hooks that feed one
MLflow run per fmkit run (rank 0 only; every MLflow request is made off the training thread)."""
from __future__ import annotations

import atexit
import os

from fmkit import RecipeSection, hookimpl

#: 1.4: plugin recipe sections
fmkit_api = ">=1.4,<2"

_trackers: dict[int, object] = {}  # id(run) -> Tracker, for the runs of this process in progress


@hookimpl
def fmkit_register_recipe_sections():
    from .settings import EXAMPLE, SUMMARY, MlflowSettings

    return [RecipeSection("mlflow", MlflowSettings, summary=SUMMARY, example=EXAMPLE)]


@hookimpl
def fmkit_on_run_start(run):
    """Start tracking when the recipe's ``mlflow:`` section names a ``tracking_uri`` or says
    ``enabled: true``, or ``MLFLOW_TRACKING_URI`` is set (``enabled: false`` wins over all);
    otherwise this plugin does nothing for the run."""
    if not run.is_main:
        return
    settings = run.recipe.section("mlflow")
    if settings is not None and settings.enabled is False:
        return
    uri = (settings.tracking_uri if settings is not None else None) or os.environ.get("MLFLOW_TRACKING_URI") or None
    if uri is None and not (settings is not None and settings.enabled):
        return
    from .settings import MlflowSettings
    from .tracker import Tracker

    _trackers[id(run)] = Tracker(run, settings or MlflowSettings(), uri)


@hookimpl
def fmkit_on_step_end(run, step, logs):
    if logs:  # logging steps only; the other steps cost one dict check
        tracker = _trackers.get(id(run))
        if tracker is not None:
            tracker.step(step, logs)


@hookimpl
def fmkit_on_evaluate_end(run, split, metrics):
    tracker = _trackers.get(id(run))
    if tracker is not None:
        tracker.evaluate(run, split, metrics)


@hookimpl
def fmkit_on_run_end(run, results):
    tracker = _trackers.pop(id(run), None)
    if tracker is not None:
        tracker.end(run)


@hookimpl
def fmkit_on_exception(run, error):
    tracker = _trackers.pop(id(run), None)
    if tracker is not None:
        tracker.fail(error)


@atexit.register
def _close_unfinished() -> None:
    """A run that failed after its training loop (the final evaluation, the export) is marked failed."""
    while _trackers:
        _, tracker = _trackers.popitem()
        tracker.fail(RuntimeError("the fmkit run ended without finishing"))
