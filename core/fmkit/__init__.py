"""fmkit: one workflow to fine-tune, evaluate, export and serve foundation models, extended by plugins.

Public API (everything a plugin or a script needs):

- contract: :data:`hookimpl`, :data:`HOOK_API_VERSION`, :class:`Component`, :class:`Params`,
  :class:`Task`, :class:`Dataset`, :class:`Transform`, :class:`Metric`, :class:`ScheduleHandle`,
  :class:`Exporter`, :class:`RunContext` (what lifecycle hooks receive; ``run.request_stop``),
  :class:`RecipeSection` (a plugin's own top-level recipe section)
- bases that carry the shared parts: :class:`ClassificationTask`, :class:`RegressionTask`
  (:mod:`fmkit.tasks`), :func:`carve_split`, :func:`missing_split_files`; raw-input decoding in :mod:`fmkit.io`
- plugins: :func:`register_plugin`, :func:`get_plugin_manager`, :func:`get_registry`
- workflow: :func:`load_recipe`, :func:`train`, :func:`prune`, :func:`evaluate`, :func:`predict`,
  :func:`export`, :func:`load`

Heavy modules (torch, the engine) are imported only when a workflow function is called.
"""
from __future__ import annotations

from typing import Any as _Any

from . import io
from .components import KINDS, Component, NoParams, Params
from .datasets import Dataset, carve_split, missing_split_files
from .engine.run import RunContext
from .errors import DataError, FmkitError
from .hookspecs import HOOK_API_VERSION, hookimpl, hookspec
from .interfaces import Exporter, Metric, ScheduleHandle, Transform
from .plugins import get_plugin_manager, register_plugin, unregister_plugin
from .recipe.sections import RecipeSection
from .task import Task
from .tasks import ClassificationTask, RegressionTask

from .utils.version import distribution_version as _distribution_version

__version__ = _distribution_version("fmkit", __file__)  # the number lives in pyproject.toml only


def get_registry():
    """The component registry of the process-wide plugin manager."""
    return get_plugin_manager().registry


def load_recipe(source: _Any, overrides: list[str] | None = None):
    """Load and validate a recipe (path, dict or :class:`fmkit.recipe.Recipe`)."""
    from .recipe import load_recipe as _load

    return _load(source, overrides)


def train(recipe: _Any, overrides: list[str] | None = None, run_dir: str | None = None, resume: str | None = None,
          overwrite: bool = False):
    """Run a recipe end to end; returns a :class:`fmkit.engine.run.Run`. A non-empty ``run_dir`` is
    refused unless ``resume`` continues the run in it or ``overwrite`` replaces it."""
    from .engine.api import train as _train

    return _train(recipe, overrides=overrides, run_dir=run_dir, resume=resume, overwrite=overwrite)


def evaluate(run_dir: str, data: str | None = None, split: str = "auto", trust_remote_code: bool = False) -> dict:
    """Score a run's best checkpoint; returns the flat metric dict (``trust_remote_code``: see :func:`load`)."""
    from .engine.api import evaluate as _evaluate

    return _evaluate(run_dir, data=data, split=split, trust_remote_code=trust_remote_code)


def prune(run_dir: str, heads: float | None = None, ffn: float | None = None, channels: float | None = None,
          recover_epochs: int = 1, distill: bool = False, importance_batches: int | None = None,
          output: str | None = None, overrides: list[str] | None = None, overwrite: bool = False):
    """Structured pruning of a finished run: remove the given shares of its attention heads, feed-forward
    neurons or convolution channels (what its model's plugin can remove) by importance on training
    data, train the smaller model ``recover_epochs`` (``distill``: on the run's outputs too) and
    write an ordinary run directory (``output``, else a new one); returns the
    :class:`fmkit.engine.run.Run`. Its ``eval.json`` has ``parameters_before`` and ``parameters_after``."""
    from .engine.api import prune as _prune

    return _prune(run_dir, heads=heads, ffn=ffn, channels=channels, recover_epochs=recover_epochs, distill=distill,
                  importance_batches=importance_batches, output=output, overrides=overrides, overwrite=overwrite)


def predict(run_dir: str, inputs: list[_Any], trust_remote_code: bool = False) -> list[dict]:
    """Predict raw inputs with a run's best checkpoint or an export folder (``trust_remote_code``: see :func:`load`)."""
    return load(run_dir, trust_remote_code=trust_remote_code).predict(inputs)


def export(run_dir: str, format: str, output: str | None = None, quantize: str | None = None,
           tolerance: float | None = None, min_agreement: float | None = None, trust_remote_code: bool = False,
           keep_float: bool | None = None) -> str:
    """Export a run's best model; returns the export folder. ``tolerance``, ``min_agreement`` and
    ``keep_float`` (an int8 ONNX folder also keeps the float model) default to the run recipe's
    ``export`` section (``trust_remote_code``: see :func:`load`)."""
    from .exporting.api import export as _export

    return _export(run_dir, format, output=output, quantize=quantize, tolerance=tolerance,
                   min_agreement=min_agreement, trust_remote_code=trust_remote_code, keep_float=keep_float)


def load(path: str, backend: str = "torch", precision: str = "auto", trust_remote_code: bool = False):
    """Load an export folder or a run directory as a predictor with ``.predict(raw_inputs)``.

    ``backend``: ``torch`` or ``onnx``; ``precision``: ``auto`` (the int8 model when the export has
    one), ``float`` or ``int8``. ``trust_remote_code=True`` allows Python code shipped with the
    model (an ``auto_map`` in its config) to be imported and run, and logs a warning saying so; what
    the export or run directory itself says never allows it."""
    from .exporting.loading import load_predictor

    return load_predictor(path, backend=backend, precision=precision, trust_remote_code=trust_remote_code)


__all__ = [
    "HOOK_API_VERSION", "KINDS", "ClassificationTask", "Component", "DataError", "Dataset", "Exporter", "FmkitError",
    "Metric", "NoParams", "Params", "RecipeSection", "RegressionTask", "RunContext", "ScheduleHandle", "Task", "Transform",
    "carve_split", "missing_split_files", "io", "evaluate", "export", "get_plugin_manager", "get_registry",
    "hookimpl", "hookspec", "load", "load_recipe", "predict", "prune", "register_plugin", "train", "unregister_plugin",
]


def __getattr__(name: str):
    """``fmkit.NAME`` for a function a plugin added (``fmkit_register_workflows``), imported on first use. Submodules and private names never ask the plugins."""
    import importlib.util

    if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .workflows import workflow

    fn = workflow(name)
    if fn is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r} (no installed plugin adds a "
                             f"workflow of that name; `fmkit plugins list --json` lists the workflows)")
    return fn


def __dir__() -> list[str]:
    """``dir(fmkit)`` lists the public API only (submodules stay importable by name)."""
    return sorted(__all__)
