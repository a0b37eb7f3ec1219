"""fmkit-mlflow: experiment tracking with MLflow (``fmkit.plugins`` entry point).

Enabled by the recipe's ``mlflow:`` section (:class:`fmkit_mlflow.settings.MlflowSettings`) or by
``MLFLOW_TRACKING_URI`` in the environment: every fmkit run becomes one MLflow run (parameters,
metrics, tags, artifacts, and a ``pyfunc`` model of its export), logged off the training thread.
"""
from __future__ import annotations

from fmkit.utils.version import distribution_version

__version__ = distribution_version("fmkit-mlflow", __file__)  # the number lives in pyproject.toml only

__all__ = ["__version__"]
