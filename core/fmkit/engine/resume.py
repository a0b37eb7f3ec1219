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
    path = Path(run_dir) / AMENDMENTS
    if not path.is_file():
        return []
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(doc, list):
        raise UsageError(f"{path}: expected a list of amendments; was it edited by hand?")
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
    diffs = differences(effective, new)
    refused = [d for d in diffs if not may_change(d[0]) and d[0].split(".")[0] not in sections]
    if refused:
        lines = "\n".join(f"  - {p}: {old!r} in the run, {now!r} now" for p, old, now in refused)
        raise UsageError(
            f"--resume {run_dir}: the recipe differs from the run's in {len(refused)} field(s) that change the model "
            f"or the data:\n{lines}\nresume with the run's own recipe ({Path(run_dir) / 'recipe.yaml'}), or start a "
            f"new run. Only these may change on resume: {', '.join(MAY_CHANGE)}")
    return {p: {"from": old, "to": now} for p, old, now in diffs}


def record_amendment(run_dir: Path, changes: dict[str, dict], step: int) -> None:
    """Append one amendment to ``recipe.amendments.yaml`` (atomically; ``recipe.yaml`` is left as it is)."""
    entries = read_amendments(run_dir)
    entries.append({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "resumed_at_step": step, "changes": changes})
    atomic_write_text(Path(run_dir) / AMENDMENTS, yaml.safe_dump(entries, sort_keys=False))
