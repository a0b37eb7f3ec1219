"""The recipe's ``mlflow:`` section: where to log, under which names, and what to log."""
from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator


class MlflowSettings(BaseModel):
    """The ``mlflow:`` section (fmkit-mlflow). Every field is optional: the run is tracked when the
    section names a ``tracking_uri`` or ``MLFLOW_TRACKING_URI`` is set (``enabled`` overrides),
    under the experiment ``fmkit`` unless it says otherwise."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    enabled: bool | None = Field(None, description="default: on when tracking_uri or MLFLOW_TRACKING_URI is set; "
                                 "true: on (MLflow's default store without either); false: off, even with "
                                 "MLFLOW_TRACKING_URI set")
    tracking_uri: str | None = Field(None, description="http://host:5000, sqlite:///mlflow.db, databricks ... "
                                     "(default: MLFLOW_TRACKING_URI, else MLflow's default)")
    experiment: str | None = Field(None, description="the MLflow experiment, created when missing (default: "
                                   "MLFLOW_EXPERIMENT_NAME, else 'fmkit')")
    run_name: str | None = Field(None, description="the MLflow run's name (default: the run directory's name)")
    tags: dict[str, str] = Field({}, description="extra tags on the run")
    log_params: bool = Field(True, description="the flattened resolved recipe as parameters")
    log_artifacts: bool = Field(True, description="recipe.yaml, eval.json, report.html, plots, metrics.jsonl")
    log_model: bool = Field(True, description="when the run exports: an MLflow pyfunc model wrapping the first export")
    register_model: str | None = Field(None, description="register that model under this name in the model registry")
    nest_tune_trials: bool = Field(True, description="fmkit-tune trials: nested runs under one parent run per study")
    metrics_interval: float = Field(2, ge=0, description="seconds between two metrics requests (metrics queued "
                                    "meanwhile go in one batch)")
    flush_timeout: float = Field(300, gt=0, description="seconds the end of the run waits for logging to finish")
    request_timeout: int = Field(10, ge=1, description="seconds one request to the tracking server may take")
    retries: int = Field(1, ge=0, description="retries of a failed request before the server counts as down")
    retry_after: float = Field(30, ge=0, description="seconds without logging after a failure before trying again")

    @field_validator("register_model")
    @classmethod
    def _model_name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[^/:%]{1,255}", v.strip() or ""):
            raise ValueError(f"register_model {v!r}: give a model name without '/', ':' or '%' (1-255 characters)")
        return v.strip() if v else v


SUMMARY = ("experiment tracking with MLflow: one MLflow run per fmkit run, on when tracking_uri or "
           "MLFLOW_TRACKING_URI is set")
EXAMPLE: dict = {}  # a starter recipe tracks only where the user says where to
