"""Checkpoints: written atomically, weights in safetensors, other state loaded with weights_only.

Layout: ``checkpoints/step-00000123/`` holds ``model.safetensors``, ``state.pt`` (optimizer,
scheduler, scaler, RNG states, loop position, plugin state) and ``meta.json``;
``checkpoints/best/`` holds the best model by the monitored metric.
"""
from __future__ import annotations

import io
import json
import os
import random
import shutil
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..utils.atomic import atomic_directory


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict with shared tensors de-duplicated and made contiguous (safetensors)."""
    out, seen = {}, {}
    for k, v in model.state_dict().items():
        key = (v.data_ptr(), v.shape, v.dtype) if v.numel() else None
        if key is not None and key in seen:
            continue  # tied weight: restored by load_state_dict(strict=False) through the tie
        if key is not None:
            seen[key] = k
        out[k] = v.detach().cpu().contiguous()
    return out


def save_weights(model: torch.nn.Module | dict[str, torch.Tensor], path: Path) -> None:
    """Write a model (or a :func:`model_state` snapshot of one) as safetensors."""
    from safetensors.torch import save_file

    from ..utils.atomic import FILE_MODE

    save_file(model if isinstance(model, dict) else model_state(model), str(path))
    os.chmod(path, FILE_MODE)  # safetensors writes 0600 whatever the umask


def snapshot(obj: Any) -> Any:
    """A deep copy of every tensor in ``obj`` (dicts, lists, tuples), on the CPU.

    Taken on the training thread so a background write sees the state of that step, not a
    later one: ``.cpu()`` alone returns the live tensor itself for CPU models.
    """
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(snapshot(v) for v in obj)
    return obj


class CheckpointWriter:
    """Writes checkpoints on one background thread so training goes on while the disk works.

    Callers hand over snapshots (:func:`snapshot`), so what is written is exactly the state at
    the step it was taken. Writes run in order; at most ``max_pending`` snapshots wait in memory
    (the trainer blocks beyond that). :meth:`wait` blocks until everything is on disk and raises
    a failed write's error; every write is still atomic, so a crash mid-write leaves the previous
    checkpoint intact. ``asynchronous=False`` writes on the calling thread.
    """

    def __init__(self, asynchronous: bool = True, max_pending: int = 2):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fmkit-ckpt") if asynchronous else None
        self._pending: deque[Future] = deque()
        self._max_pending = max_pending
        self._done: list[Any] = []
        self._lock = threading.Lock()

    def submit(self, write: Callable[[], Any]) -> None:
        """Run ``write`` (it returns a value reported by :meth:`completed`)."""
        if self._pool is None:
            self._done.append(write())
            return
        while len(self._pending) >= self._max_pending:
            self._pending.popleft().result()

        def run() -> None:
            result = write()
            with self._lock:
                self._done.append(result)

        self._pending.append(self._pool.submit(run))

    def completed(self) -> list[Any]:
        """Results of the writes finished since the last call (on the caller's thread)."""
        with self._lock:
            done, self._done = self._done, []
        return done

    def wait(self) -> None:
        """Block until every submitted write is on disk; re-raise the first failure."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


def _file_hint(path: Path) -> str:
    """What may help when ``path`` (weights, state) is damaged: by where it lies."""
    from ..utils.damaged import checkpoint_hint

    path = Path(path)
    if path.parent.parent.name == "checkpoints":
        return checkpoint_hint(path.parent)
    return "restore it from a copy, or run again the command that wrote it"


def load_weights(model: torch.nn.Module, path: Path, hint: str | None = None) -> None:
    """Load safetensors weights into ``model``. A missing or damaged file is a :class:`~fmkit.errors.DataError`
    naming it (followed by ``hint``: what may help); weights of other names or shapes than the model's
    are a :class:`RuntimeError` (the caller knows which files describe the model)."""
    from safetensors.torch import load_file

    from ..utils.damaged import reading

    with reading(path, hint or _file_hint(path)):
        state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    aliases = set(model.state_dict()) - set(model_state(model))  # tied weights model_state() left out
    if unexpected or set(missing) - aliases:
        raise RuntimeError(f"weights in {path} do not match the model: missing {missing}, unexpected {unexpected}")


def finite_weights(path: Path) -> bool:
    """Whether a safetensors file holds only finite floating-point values (False if unreadable)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return all(bool(torch.isfinite(t).all()) for t in (f.get_tensor(k) for k in f.keys())
                       if t.is_floating_point())
    except Exception:
        return False


def rng_state() -> dict[str, Any]:
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(directory: Path, model: torch.nn.Module | dict[str, torch.Tensor], state: dict[str, Any],
                    meta: dict[str, Any]) -> Path:
    """Write a checkpoint directory atomically (temporary directory, then rename).

    ``model``: the module, or a :func:`model_state` snapshot of it (background writes)."""
    with atomic_directory(directory) as tmp:
        save_weights(model, tmp / "model.safetensors")
        buf = io.BytesIO()
        torch.save(state, buf)
        (tmp / "state.pt").write_bytes(buf.getvalue())
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return directory


def load_state(directory: Path) -> dict[str, Any]:
    """A checkpoint's ``state.pt`` (``weights_only``: no pickled code runs). A missing or damaged file
    (or one that holds no mapping) is a :class:`~fmkit.errors.DataError` naming it."""
    from ..utils.damaged import damaged, reading

    path = Path(directory) / "state.pt"
    with reading(path, _file_hint(path)):
        state = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(state, dict):
        raise damaged(path, _file_hint(path), f"it holds a {type(state).__name__}, not the saved state")
    return state


def check_checkpoint(directory: Path) -> None:
    """Refuse a checkpoint whose ``model.safetensors`` or ``state.pt`` is missing or visibly damaged (cut
    short, not the format written), before a resume writes anything. Cheap: the weights' header and the
    state's zip directory are read, not the tensors (:func:`load_weights` and :func:`load_state` still
    turn damage found later into the same error)."""
    import zipfile

    from safetensors import safe_open

    from ..utils.damaged import reading

    directory = Path(directory)
    weights, state = directory / "model.safetensors", directory / "state.pt"
    with reading(weights, _file_hint(weights)):
        with safe_open(str(weights), framework="pt") as f:  # checks that the header covers the whole file
            list(f.keys())
    with reading(state, _file_hint(state)):
        with zipfile.ZipFile(state) as z:  # torch.save's format: a zip file, whose directory is at its end
            z.infolist()


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    steps = sorted(p for p in ckpt_dir.glob("step-*") if (p / "meta.json").is_file())
    return steps[-1] if steps else None


def prune(ckpt_dir: Path, keep_last: int) -> None:
    steps = sorted(p for p in ckpt_dir.glob("step-*") if p.is_dir())
    for p in steps[:-keep_last]:
        shutil.rmtree(p, ignore_errors=True)


def remove_stale(ckpt_dir: Path) -> list[str]:
    """Clean up after a process killed while writing a checkpoint; return the names it removed.

    A killed write leaves a ``.tmp-NAME-*`` folder (never renamed into place): removed. A kill
    between the two renames that replace an existing checkpoint leaves ``NAME`` missing and the
    previous one as ``.old-NAME-PID``: moved back; an ``.old-*`` whose ``NAME`` exists is removed.
    """
    import os
    import re

    removed = []
    if not ckpt_dir.is_dir():
        return removed
    for p in sorted(ckpt_dir.iterdir()):
        old = re.fullmatch(r"\.old-(.+)-\d+", p.name)
        if old and p.is_dir() and not (ckpt_dir / old.group(1)).exists():
            os.replace(p, ckpt_dir / old.group(1))
        elif old or p.name.startswith(".tmp-"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed
