"""The study's storage and its bookkeeping: opening it (SQLite in the study folder by default, any
Optuna RDB URL otherwise), samplers and pruners, which trials count, and recovering trials whose
process died or was interrupted so that a re-run continues with no trial lost or run twice."""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import TrialState

from .trial import HOST


def default_storage(study_dir: Path) -> str:
    return f"sqlite:///{(study_dir / 'study.db').resolve()}"


def _retry_failed(study: optuna.Study, trial) -> None:
    """Heartbeat callback: a trial whose worker went silent (another machine died) is tried again."""
    retry(study, trial)


def open_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """An RDB storage; SQLite waits for its lock (several local workers), servers get heartbeats so
    a trial of a machine that died is failed and tried again by the others. A URL that cannot be
    used (no driver, no server) is a :class:`fmkit.errors.UsageError` saying which.

    Opening a new storage creates its tables. When several processes open the same new storage at
    once (workers started together, another machine, a script reading the study), one of them can
    lose that race with a duplicate-key or "already exists" error; it is tried again (``attempts``
    times in all), and the second time the tables are there."""
    import time

    from fmkit.errors import UsageError

    for attempt in range(1, attempts + 1):
        try:
            if url.startswith("sqlite"):
                return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 300}})
            return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=180,
                                              failed_trial_callback=_retry_failed)
        except ImportError as e:
            cause = e.__cause__ or e
            hint = " (pip install 'fmkit-tune[postgres]')" if url.startswith("postgres") else ""
            raise UsageError(f"--storage {_safe(url)}: the database driver is missing: {cause}{hint}") from None
        except Exception as e:  # sqlalchemy.exc.ArgumentError, OperationalError: a bad URL, no server
            if attempt < attempts and _lost_creation_race(e):
                time.sleep(0.2 * attempt)
                continue
            raise UsageError(f"--storage {_safe(url)}: cannot open the study storage: "
                             f"{str(e).strip().splitlines()[0][:300]}") from None
    raise AssertionError("unreachable")


def _lost_creation_race(e: Exception) -> bool:
    """Whether opening failed because another process was creating the same storage's tables."""
    import sqlalchemy.exc

    if isinstance(e, sqlalchemy.exc.IntegrityError):  # e.g. UNIQUE constraint failed: alembic_version
        return True
    return isinstance(e, sqlalchemy.exc.OperationalError) and "already exists" in str(e)


def _safe(url: str) -> str:
    """The URL without its password."""
    import re

    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", url)


def make_sampler(settings, space: dict, seed: int) -> optuna.samplers.BaseSampler:
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "grid":
        return optuna.samplers.GridSampler({k: p.grid() for k, p in space.items()}, seed=seed)
    if settings.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=settings.startup_trials,
                                            warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=settings.startup_trials, multivariate=True,
                                      constant_liar=True)


def make_pruner(settings) -> optuna.pruners.BasePruner:
    """Warm-up is applied by the reporter (``warmup_evaluations``), so the pruners get none."""
    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=settings.startup_trials)
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto")
    return optuna.pruners.NopPruner()


def load_study(plan: dict, settings, space: dict, seed: int) -> optuna.Study:
    return optuna.create_study(storage=open_storage(plan["storage"]), study_name=plan["study"],
                               direction=plan["direction"], load_if_exists=True,
                               sampler=make_sampler(settings, space, seed), pruner=make_pruner(settings))


def counts(study: optuna.Study) -> tuple[int, int]:
    """``(done, running)``: trials that count towards the budget (completed, pruned, and failed for
    a reason of their own: an invalid sample, a diverged run), and trials running now."""
    done = running = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.FAIL
                                                                    and "error" in t.user_attrs):
            done += 1
        elif t.state == TrialState.RUNNING:  # a queued (WAITING) trial is what the next worker picks up
            running += 1
    return done, running


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def retry(study: optuna.Study, trial) -> None:
    """Queue the same parameters again, continuing the trial's run (its checkpoints) when they are here."""
    study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number,
                                                        "run_dir": trial.user_attrs.get("run_dir")})


def recover(study: optuna.Study, storage: optuna.storages.RDBStorage) -> list[int]:
    """Trials left by an interrupted or killed invocation, queued again (once each): a trial of this
    machine still RUNNING whose process is gone is marked failed first. Returns their numbers."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    out = []
    for t in trials:
        if t.number in retried:
            continue
        dead = t.state == TrialState.RUNNING and (
            (t.user_attrs.get("host") == HOST and "pid" in t.user_attrs and not _alive(t.user_attrs["pid"]))
            or ("pid" not in t.user_attrs and t.datetime_start is not None  # died before it said where it runs
                and (datetime.now() - t.datetime_start).total_seconds() > 600))
        interrupted = t.state == TrialState.FAIL and t.user_attrs.get("interrupted")
        if dead:
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        if dead or interrupted:
            retry(study, t)
            out.append(t.number)
    return out
