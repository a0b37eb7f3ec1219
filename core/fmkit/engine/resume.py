"""Resuming a run with a recipe that may differ from the one it started with.

A run directory's ``recipe.yaml`` is the recipe the run started with and is never rewritten.
Fields that only say how long or how visibly to train (``MAY_CHANGE``) may differ on ``--resume``;
each such change is appended to ``recipe.amendments.yaml``, and the run's effective recipe is
``recipe.yaml`` with its amendments applied in order. Any other difference (task, model, labels,
data, max_length, batch size, optimizer...) would silently train something else than the
checkpoint holds, so the resume is refused, listing every difference, before anything is written.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from ..errors import UsageError
from ..utils.atomic import atomic_write_text

AMENDMENTS = "recipe.amendments.yaml"

#: dotted prefixes of recipe fields a resumed run may change: they change neither the model nor the data
MAY_CHANGE = (
    "train.epochs", "train.max_steps", "train.log_every", "train.checkpoint_every", "train.keep_last",
    "train.async_checkpoint", "train.progress", "train.device", "train.threads", "train.max_bad_steps",
    "train.eval_every", "train.eval_batch_size", "train.early_stopping",
    "data.num_workers", "data.pin_memory", "data.cache", "data.cache_dir",
    "evaluate.split", "export", "serve", "tracking",
)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists are compared as whole values."""
    if isinstance(obj, dict) and obj:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def may_change(path: str) -> bool:
    return any(path == p or path.startswith(p + ".") for p in MAY_CHANGE)


def differences(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
    """Every dotted path whose value differs, with the old and the new value (absent: None)."""
    a, b = flatten(old), flatten(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def read_amendments(run_dir: Path) -> list[dict]:
    """The run's amendments, oldest first; a damaged file is a :class:`~fmkit.errors.DataError` naming it."""
    from ..utils.damaged import damaged, read_yaml, run_hint

    path = Path(run_dir) / AMENDMENTS
    if not path.exists():
        return []
    hint = run_hint(run_dir)
    doc = read_yaml(path, hint, list, empty=[])
    for i, entry in enumerate(doc, 1):
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(changes, (dict, type(None))) or any(
                not isinstance(k, str) or not isinstance(v, dict) for k, v in (changes or {}).items()):
            raise damaged(path, hint, f"entry {i} is not an amendment: a mapping whose changes are "
                                      "{field: {from: ..., to: ...}}")
    return doc


def apply_amendments(recipe: dict, amendments: list[dict]) -> dict:
    """The recipe with each amendment's ``changes`` ({dotted path: {"from", "to"}}) set, in order."""
    for entry in amendments:
        for path, change in (entry.get("changes") or {}).items():
            node = recipe
            *parents, last = path.split(".")
            for p in parents:
                if not isinstance(node.get(p), dict):
                    node[p] = {}
                node = node[p]
            node[last] = change.get("to")
    return recipe


def check_resume(run_dir: Path, effective: dict, new: dict, sections: tuple[str, ...] = ()) -> dict[str, dict]:
    """Compare the recipe a resume asks for with the run's effective recipe.

    Returns the allowed changes (``{path: {"from", "to"}}``, empty when none); raises
    :class:`UsageError` listing every difference that would change the model or the data.
    ``sections``: plugin sections (``tune``...), which may change too: they configure a plugin's
    workflow, not the model or the data.
    """
    check_run_files(run_dir)
    diffs = differences(effective, new)
    refused = [d for d in diffs if not may_change(d[0]) and d[0].split(".")[0] not in sections]
    if refused:
        lines = "\n".join(f"  - {p}: {old!r} in the run, {now!r} now" for p, old, now in refused)
        raise UsageError(
            f"--resume {run_dir}: the recipe differs from the run's in {len(refused)} field(s) that change the model "
            f"or the data:\n{lines}\nresume with the run's own recipe ({Path(run_dir) / 'recipe.yaml'}), or start a "
            f"new run. Only these may change on resume: {', '.join(MAY_CHANGE)}")
    return {p: {"from": old, "to": now} for p, old, now in diffs}


def check_run_files(run_dir: Path) -> None:
    """Refuse to resume a run whose files a resume reads are missing or damaged, before anything is
    written: the task's fitted state (``artifacts/task.json``: without it the labels cannot be checked
    and could be silently re-mapped), ``metrics.jsonl`` (continued from the checkpoint's step) and the
    checkpoint resumed from. Each is a :class:`~fmkit.errors.DataError` naming the file."""
    import json

    from ..utils.damaged import damaged, read_task_state, reading, run_hint
    from .checkpoint import check_checkpoint, latest_checkpoint

    run_dir = Path(run_dir)
    read_task_state(run_dir / "artifacts" / "task.json", run_hint(run_dir))
    log_file = run_dir / "metrics.jsonl"
    if log_file.exists():
        hint = ("the run's log cannot be continued; restore it from a copy, delete the damaged line, or re-run the "
                "`fmkit train` that made the run")
        with reading(log_file, hint):
            text = log_file.read_bytes().decode("utf-8")
        lines = text.splitlines()  # as the log reads itself back (fmkit.engine.run.MetricsLog)
        for i, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if i == len(lines) and not text.endswith("\n"):
                    continue  # cut short by a kill while it was written: the log drops it on resuming
                raise damaged(log_file, hint, f"line {i} is not JSON") from None
            step = record.get("step", 0) if isinstance(record, dict) else None
            if not isinstance(step, (int, float)) or isinstance(step, bool):
                raise damaged(log_file, hint, f"line {i} is not a record with a step number")
    latest = latest_checkpoint(run_dir / "checkpoints")
    if latest is not None:
        check_checkpoint(latest)


def record_amendment(run_dir: Path, changes: dict[str, dict], step: int) -> None:
    """Append one amendment to ``recipe.amendments.yaml`` (atomically; ``recipe.yaml`` is left as it is)."""
    entries = read_amendments(run_dir)
    entries.append({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "resumed_at_step": step, "changes": changes})
    atomic_write_text(Path(run_dir) / AMENDMENTS, yaml.safe_dump(entries, sort_keys=False))
