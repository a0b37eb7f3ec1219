"""One trial: an ordinary fmkit run of the sampled recipe, its evaluations reported to Optuna, and a
hopeless one stopped through ``run.request_stop`` (the supported stop signal; nothing raises)."""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import optuna

import fmkit
from fmkit.errors import FmkitError

from .checks import override

HOST = socket.gethostname()
REPORTER = "fmkit-tune-trial"
#: set in the environment while a trial trains (fmkit-tune's public signal to other plugins, e.g.
#: fmkit-mlflow nests trials under one run per study): the study's name, its folder, the trial's number
SIGNAL = ("FMKIT_TUNE_STUDY", "FMKIT_TUNE_STUDY_DIR", "FMKIT_TUNE_TRIAL")


class _Announced:
    """``SIGNAL`` set for the length of a ``with`` block, the previous values restored after."""

    def __init__(self, study: str, folder: str, number: int):
        self.values = dict(zip(SIGNAL, (study, folder, str(number))))

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in SIGNAL}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class TrialReporter:
    """A plugin registered for the length of one trial: reports each validation to the Optuna trial
    (step = the evaluation's number, so trials with other batch sizes compare evaluation by
    evaluation) and asks the run to stop when the pruner says so."""

    def __init__(self, trial: optuna.Trial, metric: str, warmup: int, prune: bool, on_report=None):
        self.trial, self.metric, self.warmup, self.prune = trial, metric, warmup, prune
        self.on_report = on_report
        self.seen = 0
        self.pruned: str | None = None
        self.last: dict | None = None
        self.steps = 0

    def _report(self, record: dict, index: int) -> float | None:
        value = record.get(self.metric)
        if isinstance(value, (int, float)):
            self.trial.report(float(value), index)
            self.last = {k: v for k, v in record.items() if k != "split"}
            return float(value)
        return None

    @fmkit.hookimpl
    def fmkit_on_run_start(self, run):
        for i, record in enumerate(run.history, 1):  # a resumed trial: what its checkpoint remembers
            self._report(record, i)
        self.seen = len(run.history)

    @fmkit.hookimpl
    def fmkit_on_evaluate_end(self, run, split, metrics):
        # in-loop validations add to run.history; the final evaluation of the best checkpoint does not
        if split != "validation" or len(run.history) == self.seen:
            return
        self.seen = len(run.history)
        value = self._report(run.history[-1], self.seen)
        self.steps = run.global_step
        if self.on_report is not None:
            self.on_report(self.trial.number, self.seen, run.global_step, value)
        if value is None or not self.prune or self.pruned or self.seen <= self.warmup:
            return
        if self.trial.should_prune():
            self.pruned = (f"pruned at evaluation {self.seen} (step {run.global_step}): "
                           f"{self.metric} {value:.4g}")
            run.request_stop(f"fmkit-tune: trial {self.trial.number} {self.pruned}")

    @fmkit.hookimpl
    def fmkit_on_run_end(self, run):
        self.steps = run.global_step


def trial_overrides(plan: dict, params: dict[str, Any]) -> list[str]:
    """The ``--set`` items that make a trial's recipe from the study's base recipe: the sampled
    values, selection on validation only (the test split is scored once, for the best trial), the
    checkpoint picked by the tuned metric, no exports, no progress bar, threads divided."""
    out = [override(k, v) for k, v in params.items()]
    out += [override("evaluate.split", "validation"), override("evaluate.monitor", plan["metric"]),
            override("evaluate.monitor_mode", "max" if plan["direction"] == "maximize" else "min"),
            "export.formats=[]", "train.progress=off"]
    if plan.get("threads"):
        out.append(override("train.threads", plan["threads"]))
    return out


def _resumable(run_dir: Path) -> bool:
    return any((d / "meta.json").is_file() for d in (run_dir / "checkpoints").glob("step-*"))


def make_objective(plan: dict, space: dict, on_report=None):
    """The Optuna objective of a study: sample, validate, train, report; the value is the best
    checkpoint's validation ``metric``."""
    metric = plan["metric"]

    def objective(trial: optuna.Trial) -> float:
        params = {key: p.suggest(trial, key) for key, p in space.items()}
        own = Path(plan["dir"]) / "trials" / f"trial-{trial.number:04d}"
        earlier = trial.user_attrs.get("run_dir")  # a retried trial continues its run where it stopped
        run_dir = Path(earlier) if earlier and Path(earlier).is_dir() else own
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("host", HOST)
        trial.set_user_attr("pid", os.getpid())
        reporter = TrialReporter(trial, metric, plan["warmup"], plan["pruner"] != "none", on_report)
        try:
            recipe = fmkit.load_recipe(plan["base"], trial_overrides(plan, params))  # before anything runs
            fmkit.unregister_plugin(REPORTER)
            fmkit.register_plugin(reporter, name=REPORTER)
            with _Announced(plan["study"], plan["dir"], trial.number):
                if run_dir.is_dir() and _resumable(run_dir) and (run_dir / "recipe.yaml").is_file():
                    run = fmkit.train(None, resume=str(run_dir))
                else:
                    run = fmkit.train(recipe, run_dir=str(run_dir), overwrite=(run_dir / "recipe.yaml").is_file())
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run saved a checkpoint; the study retries it
            trial.set_user_attr("interrupted", True)
            raise
        except FmkitError as e:  # an invalid sample, a diverged run: a failed trial, the study goes on
            trial.set_user_attr("error", str(e).splitlines()[0][:500])
            raise
        finally:
            fmkit.unregister_plugin(REPORTER)
        trial.set_user_attr("steps", reporter.steps)
        trial.set_user_attr("train_seconds", run.train_seconds)
        trial.set_user_attr("validation", {k: v for k, v in run.results.items() if isinstance(v, (int, float))})
        if reporter.pruned:
            trial.set_user_attr("pruned", reporter.pruned)
            trial.set_user_attr("last_metrics", reporter.last)
            raise optuna.TrialPruned(reporter.pruned)
        value = run.results.get(metric)
        if not isinstance(value, (int, float)):
            trial.set_user_attr("error", f"the run computed no {metric!r}: {sorted(run.results)}")
            raise FmkitError(f"trial {trial.number}: the run computed no {metric!r}")
        return float(value)

    return objective
