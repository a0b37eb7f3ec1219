"""One fmkit run's MLflow run: what each lifecycle hook hands to the background :class:`Worker`.

The training thread only builds small dicts and queues them; making the run, logging, uploading
artifacts and the model all happen on the worker's thread. The MLflow run's id is kept in the run
directory (``mlflow.json``, written atomically) so ``fmkit train --resume`` continues that run.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from fmkit.utils.atomic import atomic_write_text

from . import __version__
from .params import flatten, run_tags
from .parent import parent_run_id, study_signal
from .worker import Worker

log = logging.getLogger("fmkit.mlflow")

STATE_FILE = "mlflow.json"
ARTIFACTS = ("recipe.yaml", "recipe.amendments.yaml", "eval.json", "eval_details.json", "environment.json",
             "metrics.jsonl", "report.html", "plots")


def _numbers(values: dict, prefix: str) -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step", "epoch")}


def export_dirs(recipe: Any, run_dir: Path) -> list[Path]:
    """The export folders a run wrote, in the order of ``export.formats`` (where the engine puts them)."""
    out = []
    for fmt in recipe.export.formats:
        if recipe.export.output:
            d = Path(recipe.export.output) / fmt
        else:
            d = run_dir / "exports" / (fmt + (f"-{recipe.export.quantize}" if recipe.export.quantize else ""))
        if (d / "export.json").is_file():
            out.append(d)
    return out


class Tracker:
    """The MLflow side of one fmkit run (rank 0 only)."""

    def __init__(self, run: Any, settings: Any, uri: str | None):
        self.settings, self.uri = settings, uri
        self.run_dir = Path(run.run_dir)
        self.recipe = run.recipe
        self.state = self._read_state()
        self.experiment = settings.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "fmkit"
        self.run_name = settings.run_name or self.run_dir.name
        self.signal = study_signal() if settings.nest_tune_trials else None
        self.tags = run_tags(run, settings, __version__)
        self.params = flatten(run.recipe.to_dict()) if settings.log_params else {}
        self.seen = len(run.history)
        self.parent_id: str | None = None
        self.worker = Worker(uri, settings, self._ensure_run)
        self.worker.job(lambda client, run_id: None, "the run")  # make the run now, not at the first metric

    # ----------------------------------------------------------- the training thread (cheap)
    def step(self, step: int, logs: dict) -> None:
        self.worker.metrics(_numbers(logs, "train/"), step)

    def evaluate(self, run: Any, split: str, metrics: dict) -> None:
        if split == "validation" and len(run.history) > self.seen:  # an in-loop validation
            self.seen = len(run.history)
            self.worker.metrics(_numbers(metrics, "validation/"), run.global_step)
        else:  # the final evaluation of the best checkpoint (test split when the data has one)
            self.worker.metrics(_numbers(metrics, "final/"), run.global_step)
            self.worker.job(lambda c, rid: c.set_tag(rid, "fmkit.final_split", split), "the final split")

    def end(self, run: Any) -> None:
        """Artifacts, the pyfunc model (and its registration), the run's end; then wait for the
        worker (at most ``flush_timeout`` seconds)."""
        if run.stop_reason:
            reason = run.stop_reason[:5000]
            self.worker.job(lambda c, rid: c.set_tag(rid, "fmkit.stop_reason", reason), "the stop reason", True)
        if self.settings.log_artifacts:
            self.worker.job(self._log_artifacts, "the run's files", True)
        exports = export_dirs(self.recipe, self.run_dir)
        if self.settings.log_model and exports:
            self.worker.job(lambda c, rid: self._log_model(c, rid, exports[0]), "the pyfunc model", True)
        self.worker.job(lambda c, rid: self._terminate(c, rid, "FINISHED"), "the run's end", True)
        self._close(self.settings.flush_timeout)

    def fail(self, error: BaseException) -> None:
        status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
        note = f"{type(error).__name__}: {error}"[:5000]
        self.worker.job(lambda c, rid: c.set_tag(rid, "fmkit.error", note), "the error", True)
        self.worker.job(lambda c, rid: self._terminate(c, rid, status), "the run's end", True)
        self._close(min(self.settings.flush_timeout, 30.0))

    def _close(self, timeout: float) -> None:
        if not self.worker.close(timeout):
            log.warning("fmkit-mlflow: gave up waiting for MLflow after %gs (mlflow.flush_timeout); what was "
                        "not sent is lost there, the run directory has everything", timeout)
        log.debug("fmkit-mlflow: %s", self.worker.summary())

    # ----------------------------------------------------------- the worker thread
    def _read_state(self) -> dict:
        try:
            data = json.loads((self.run_dir / STATE_FILE).read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _experiment_id(self, client) -> str:
        exp = client.get_experiment_by_name(self.experiment)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                client.restore_experiment(exp.experiment_id)
            return exp.experiment_id
        try:
            return client.create_experiment(self.experiment)
        except Exception:  # another process made it first
            exp = client.get_experiment_by_name(self.experiment)
            if exp is None:
                raise
            return exp.experiment_id

    def _ensure_run(self, client) -> str:
        """Make the MLflow run (or re-open the one ``mlflow.json`` names) and log its parameters."""
        uri = self.worker.uri
        old = self.state.get("run_id") if self.state.get("tracking_uri") == uri else None
        if old:
            try:
                found = client.get_run(old)
            except Exception:  # deleted from the server or never made there: a new run
                found = None
            if found is not None and found.info.lifecycle_stage == "active":
                client.update_run(old, status="RUNNING")
                self._parent_running(client, found.data.tags.get("mlflow.parentRunId"))
                self._log_params(client, old, found.data.params)
                client.set_tag(old, "fmkit.resumed", "true")
                return old
        experiment_id = self._experiment_id(client)
        tags = dict(self.tags)
        if self.signal is not None:
            parent = parent_run_id(client, experiment_id, self.signal, uri)
            self._parent_running(client, parent)
            tags.update({"mlflow.parentRunId": parent, "fmkit.study": self.signal["study"],
                         "fmkit.trial": self.signal["trial"]})
        run_id = client.create_run(experiment_id, tags=tags, run_name=self.run_name).info.run_id
        self.state = {"tracking_uri": uri, "experiment": self.experiment, "experiment_id": experiment_id,
                      "run_id": run_id}
        atomic_write_text(self.run_dir / STATE_FILE, json.dumps(self.state, indent=2) + "\n")
        self._log_params(client, run_id, {})
        if uri.startswith(("http://", "https://")):
            log.info("fmkit-mlflow: MLflow run %s/#/experiments/%s/runs/%s", uri.rstrip("/"), experiment_id, run_id)
        return run_id

    def _parent_running(self, client, parent: str | None) -> None:
        if parent:
            self.parent_id = parent
            client.update_run(parent, status="RUNNING")

    def _log_params(self, client, run_id: str, existing: dict) -> None:
        """Parameters not logged yet; on resume a changed value (MLflow keeps a parameter's first
        value) is recorded as the tag ``fmkit.resume.<key>``."""
        from mlflow.entities import Param, RunTag

        new = [Param(k, v) for k, v in self.params.items() if k not in existing]
        changed = [RunTag(f"fmkit.resume.{k}"[:250], v) for k, v in self.params.items()
                   if k in existing and existing[k] != v]
        for s in range(0, max(len(new), len(changed)), 100):
            client.log_batch(run_id, params=new[s:s + 100], tags=changed[s:s + 100], synchronous=True)

    def _log_artifacts(self, client, run_id: str) -> None:
        for name in ARTIFACTS:
            path = self.run_dir / name
            if path.is_dir():
                client.log_artifacts(run_id, str(path), f"fmkit/{name}")
            elif path.is_file():
                client.log_artifact(run_id, str(path), "fmkit")

    def _log_model(self, client, run_id: str, export: Path) -> None:
        import mlflow

        from .pyfunc import save_pyfunc

        with tempfile.TemporaryDirectory(prefix="fmkit-mlflow-") as tmp:
            save_pyfunc(export, Path(tmp) / "model", self._requirements(mlflow.__version__))
            client.log_artifacts(run_id, str(Path(tmp) / "model"), "model")
        uri = f"runs:/{run_id}/model"
        client.set_tag(run_id, "fmkit.pyfunc_model", uri)
        client.set_tag(run_id, "fmkit.pyfunc_export", str(export.resolve()))
        name = self.settings.register_model
        if name:
            from mlflow.exceptions import MlflowException

            try:
                client.create_registered_model(name)
            except MlflowException as e:
                if "RESOURCE_ALREADY_EXISTS" not in str(e.error_code):
                    raise
            source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/model"
            version = client.create_model_version(name, source, run_id=run_id,
                                                  tags={"fmkit.run_dir": str(self.run_dir.resolve())})
            client.set_tag(run_id, "fmkit.registered_model", f"models:/{name}/{version.version}")
            log.info("fmkit-mlflow: registered %s version %s", name, version.version)

    def _requirements(self, mlflow_version: str) -> list[str]:
        """What serving the model needs: fmkit, this plugin, the plugins that built the run, mlflow."""
        env = {}
        try:
            env = json.loads((self.run_dir / "environment.json").read_text())
        except (OSError, ValueError):
            pass
        pkgs = env.get("packages", {}) if isinstance(env, dict) else {}
        dists = {"fmkit": pkgs.get("fmkit"), "fmkit-mlflow": __version__, "mlflow": mlflow_version}
        for p in env.get("plugins", []) if isinstance(env, dict) else []:
            if isinstance(p, dict) and p.get("distribution") and p["distribution"] not in dists:
                dists[p["distribution"]] = p.get("version")
        for dep in ("torch", "pandas"):
            dists.setdefault(dep, pkgs.get(dep))
        return [f"{k}=={v}" if v and v[0].isdigit() else k for k, v in dists.items()]

    def _terminate(self, client, run_id: str, status: str) -> None:
        client.set_terminated(run_id, status)
        if self.parent_id:
            client.set_terminated(self.parent_id, "FINISHED")  # the next trial sets it running again


__all__ = ["STATE_FILE", "Tracker", "export_dirs"]
