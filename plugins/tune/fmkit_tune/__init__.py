"""fmkit-tune: hyperparameter search with Optuna over fmkit recipes (``fmkit.plugins`` entry point).

``fmkit tune RECIPE`` on the command line, :func:`tune` in Python; the recipe's ``tune:`` section
says what to search (:class:`fmkit_tune.settings.TuneSettings`).
"""
from __future__ import annotations

from typing import Any

from fmkit.utils.version import distribution_version

__version__ = distribution_version("fmkit-tune", __file__)  # the number lives in pyproject.toml only


def tune(recipe: Any, overrides: list[str] | None = None, **options: Any):
    """Run (or continue) a study over ``recipe`` (a path, a dict or a loaded recipe) with its
    ``tune:`` section; returns a :class:`fmkit_tune.study.TuneResult`. Options: ``trials``,
    ``timeout`` (seconds), ``workers``, ``storage`` (an Optuna RDB URL), ``study`` (its name),
    ``directory`` (the study folder), ``enqueue`` (parameter dicts tried first, on a new study),
    ``progress`` (the live table). See :func:`fmkit_tune.study.run_study`."""
    from .study import run_study

    return run_study(recipe, overrides, **options)


__all__ = ["__version__", "tune"]
