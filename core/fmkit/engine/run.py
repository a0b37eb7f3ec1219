"""Run directory, run context handed to lifecycle hooks, and the run's results."""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..utils.atomic import atomic_write_text, disk_full_error, is_disk_full

log = logging.getLogger("fmkit")


@dataclass
class RunContext:
    """What lifecycle hooks receive as ``run`` (exported as :class:`fmkit.RunContext`).

    One object per training run, made before any hook is called and changed in place as the run
    goes on; hooks may read every attribute and keep their own state elsewhere (a hook that
    changes the model or optimizer does so at its own risk).

    Attributes:
        recipe: the validated :class:`fmkit.recipe.Recipe` (``run.recipe.train.epochs``,
            ``run.recipe.task.name``; ``run.recipe.to_dict()`` for plain data).
        run_dir: the run directory (:class:`pathlib.Path`), shared by every rank.
        task: the :class:`fmkit.Task`, fitted (``setup`` done) by the time
            ``fmkit_on_run_start`` is called.
        model: the ``torch.nn.Module`` being trained, unwrapped (not the DDP/FSDP or compiled
            wrapper); set before ``fmkit_on_run_start``.
        optimizer: the ``torch.optim.Optimizer``; ``None`` for a model without trainable
            parameters (a baseline that is only evaluated).
        device: the ``torch.device`` training runs on.
        rank: this process's rank (0 without ``torchrun``); world_size: the number of processes.
        global_step: optimizer steps taken so far (1-based in ``fmkit_on_step_end``).
        epoch: the current epoch, 0-based.
        data_summary: ``{"examples": {split: count}, "dropped": {"split/reason": count},
            "labels": [...]}`` once the data is loaded.
        history: every validation record so far, oldest first: ``{"split": "validation",
            "step", "epoch", <flat metric names>: value}``.
        stop_reason: why a hook asked the run to stop (:meth:`request_stop`), else ``None``.
        started_at: wall-clock time (``time.time()``, seconds since the epoch) when ``fmkit.train``
            began, before the data was read (since hook API 1.4): a time budget is
            ``time.time() - run.started_at``. A resumed run starts its clock again.

    Per-run state of a hook: a plugin module lives for the whole process, which may train several
    runs (a sweep, the tests), so keep a hook's state in a dict keyed by ``run.run_dir``, set it up
    in ``fmkit_on_run_start`` and drop it in ``fmkit_on_run_end`` and ``fmkit_on_exception``
    (the run context itself is not the place: it is rebuilt for every run).
    """

    recipe: Any
    run_dir: Path
    task: Any = None
    model: Any = None
    optimizer: Any = None
    device: Any = None
    rank: int = 0
    world_size: int = 1
    global_step: int = 0
    epoch: int = 0
    data_summary: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    stop_reason: str | None = None
    started_at: float = field(default_factory=time.time)

    def request_stop(self, reason: str) -> None:
        """Ask the training loop to stop at the next step boundary (since hook API 1.4), so a hook
        never has to raise to end training: a pruner, a time budget, a target reached.

        The run then ends as early stopping ends it: the step's evaluation and checkpoint, a last
        validation when the last step was not evaluated, the final evaluation of the best
        checkpoint, ``eval.json``, the report, the export and ``fmkit_on_run_end``. ``reason`` is
        recorded in ``metrics.jsonl`` as one line
        ``{"split": "event", "event": "stop", "step", "epoch", "reason"}`` and in
        ``eval_details.json`` as ``"stopped": {"reason", "step", "epoch"}``; ``fmkit train`` prints
        ``stopped: REASON``, ``fmkit runs`` shows ``finished (stopped early: REASON)`` and
        the report names the reason. The first request wins; later ones are ignored. Called
        from ``fmkit_on_run_start`` the run stops before its first step. Under ``torchrun`` the
        ranks stop together: a request on any rank stops every rank at the next optimizer step.
        """
        if self.stop_reason is None:
            self.stop_reason = str(reason) or "stop requested by a plugin"

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes files (do your writing only there)."""
        return self.rank == 0


@dataclass
class Run:
    """The outcome of :func:`fmkit.train`."""

    run_dir: Path
    results: dict[str, float]
    report_path: Path | None = None
    exports: dict[str, str] = field(default_factory=dict)
    best_checkpoint: Path | None = None
    #: seconds spent in the training loop (with its evaluations), without data loading or export
    train_seconds: float | None = None
    #: ``{"reason", "step", "epoch"}`` when a hook stopped the run (``run.request_stop``), else None
    stopped: dict | None = None


#: what a run writes in its folder (plugins' state files are JSON files): ``--overwrite`` replaces a
#: folder holding nothing else
RUN_ENTRIES = {"recipe.yaml", "recipe.amendments.yaml", "environment.json", "artifacts", "checkpoints",
               "metrics.jsonl", "eval.json", "eval_details.json", "report.html", "plots", "exports", "tensorboard",
               "prune.json"}


def replaced_run(path: Path) -> Path:
    """Where ``--overwrite`` keeps the run it replaces until the new one holds a checkpoint."""
    return path.with_name(f".{path.name}.replaced-{os.getpid()}")


def _check_replaceable_run(path: Path, shown: str) -> None:
    """``--overwrite`` replaces an fmkit run and nothing else: not the current folder or one above it,
    not a folder holding files a run does not write (a project with a recipe.yaml in it)."""
    here = Path.cwd().resolve()
    if path.resolve() == here or here.is_relative_to(path.resolve()):
        raise UsageError(f"--run-dir {shown} is {'the current folder' if path.resolve() == here else 'a folder above the current one'}; "
                         "--overwrite would replace it whole: give the run's own folder")
    names = sorted(p.name for p in path.iterdir())
    if "recipe.yaml" not in names or not {"artifacts", "checkpoints", "environment.json"} & set(names):
        raise UsageError(f"--run-dir {shown} is not an fmkit run directory (no recipe.yaml with artifacts/, "
                         "checkpoints/ or environment.json); --overwrite replaces runs only: choose an empty or new "
                         "folder")
    other = [n for n in names if n not in RUN_ENTRIES and not n.endswith(".json") and not n.startswith(".")]
    if other:
        listed = ", ".join(other[:5]) + (" ..." if len(other) > 5 else "")
        raise UsageError(f"--run-dir {shown} holds files a run does not write ({listed}); --overwrite would delete "
                         "them with the run: move them out, or choose another folder")


def new_run_dir(recipe, explicit: str | None, overwrite: bool = False) -> Path:
    """The folder a new run writes to: ``explicit`` (``--run-dir``), which must be empty or absent
    unless ``overwrite`` replaces the fmkit run in it, or a new ``<runs_dir>/<name>-<time>``, which
    ``<runs_dir>/latest`` then points at."""
    if explicit:
        path = Path(explicit).absolute()
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            if not path.is_dir():
                raise UsageError(f"--run-dir {explicit} is a file; give a folder")
            if not overwrite:
                raise UsageError(f"--run-dir {explicit} already holds files; two runs in one folder would mix their "
                                 f"metrics and checkpoints. Continue it with --resume {explicit}, replace it with "
                                 "--overwrite, or choose another folder")
            _check_replaceable_run(path, explicit)
            path.rename(replaced_run(path))  # atomic: the old run is gone from its name before anything is
            # written; kept aside until the new run holds a checkpoint (TrainingSession restores it on a failure)
        path.mkdir(parents=True, exist_ok=True)
        return path
    name = recipe.tracking.run_name or f"{recipe.task.name}-{recipe.model.name}".replace(":", "_")
    path = Path(recipe.tracking.runs_dir) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while path.exists():
        n += 1
        path = path.with_name(f"{path.name.rsplit('.', 1)[0]}.{n}")
    path.mkdir(parents=True, exist_ok=True)
    _point_latest(path)
    return path


def _point_latest(path: Path) -> None:
    """``<runs_dir>/latest`` -> the newest run (a relative symlink, replaced atomically)."""
    link = path.parent / "latest"
    tmp = path.parent / f".latest-{os.getpid()}"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(path.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError as e:  # e.g. a file system without symlinks: the run itself is unaffected
        log.debug("could not point %s at %s: %s", link, path, e)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except Exception:
        return None


def _requirements(dist_name: str) -> dict[str, str]:
    """The installed version of a distribution and of every distribution it requires (extras too)."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        return {}
    out = {dist.metadata["Name"]: dist.version}
    for line in dist.requires or []:
        try:
            name = Requirement(line).name
        except InvalidRequirement:
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass  # an extra that is not installed
    return out


def loaded_plugins(manager: Any = None) -> list[dict[str, Any]]:
    """Every plugin the manager loaded: name, source, distribution and version, hook-API range."""
    if manager is None:
        from ..plugins import get_plugin_manager

        manager = get_plugin_manager()
    manager.resolve_distributions()
    keys = ("name", "source", "distribution", "version", "api")
    return [{k: getattr(info, k) for k in keys} for info in manager.infos.values() if info.status == "loaded"]


def environment(seed: int, device: str, manager: Any = None) -> dict[str, Any]:
    """What ``environment.json`` records: Python, platform, every loaded plugin with its distribution
    and version, and the versions of fmkit's and those distributions' requirements."""
    plugins = loaded_plugins(manager)
    pkgs = _requirements("fmkit")
    for dist in sorted({p["distribution"] for p in plugins if p["distribution"]}):
        pkgs.update(_requirements(dist))
    return {"python": sys.version.split()[0], "platform": platform.platform(), "plugins": plugins,
            "packages": dict(sorted(pkgs.items())), "git_commit": _git_commit(), "seed": seed, "device": device,
            "cpu_count": os.cpu_count(), "argv": sys.argv}


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


class MetricsLog:
    """``metrics.jsonl`` (one line per logged step and per evaluation) plus optional TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool, enabled: bool = True, resume_step: int | None = None):
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self.tb = None
        if not enabled:
            return
        if resume_step is not None and self.path.is_file():  # drop lines past the resumed checkpoint
            text = self.path.read_text()
            lines = text.splitlines()
            if lines and not text.endswith("\n"):  # a line cut short by a kill while it was written
                try:
                    json.loads(lines[-1])
                except ValueError:
                    lines.pop()
            keep = [ln for ln in lines if ln and json.loads(ln).get("step", 0) <= resume_step]
            atomic_write_text(self.path, "".join(x + "\n" for x in keep))
        self.file = open(self.path, "a", buffering=1)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except Exception:  # tensorboard not installed: the JSONL log is enough
                self.tb = None

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        try:
            self.file.write(json.dumps(record) + "\n")
        except OSError as e:
            if is_disk_full(e):
                raise disk_full_error(self.path) from None
            raise
        if self.tb is not None:
            prefix = record.get("split", "train")
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.tb.add_scalar(f"{prefix}/{k}", v, record.get("step", 0))

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.tb is not None:
                self.tb.close()
