"""Checkpoints: written atomically, weights in safetensors, other state loaded with weights_only.

Layout: ``checkpoints/step-00000123/`` holds ``model.safetensors``, ``state.pt`` (optimizer,
scheduler, scaler, RNG states, loop position, plugin state) and ``meta.json``;
``checkpoints/best/`` holds the best model by the monitored metric.
"""
from __future__ import annotations

import io
import json
import random
import shutil
from pathlib import Path
from typing import Any

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


def save_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    save_file(model_state(model), str(path))


def load_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    aliases = set(model.state_dict()) - set(model_state(model))  # tied weights model_state() left out
    if unexpected or set(missing) - aliases:
        raise RuntimeError(f"weights in {path} do not match the model: missing {missing}, unexpected {unexpected}")


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


def save_checkpoint(directory: Path, model: torch.nn.Module, state: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write a checkpoint directory atomically (temporary directory, then rename)."""
    with atomic_directory(directory) as tmp:
        save_weights(model, tmp / "model.safetensors")
        buf = io.BytesIO()
        torch.save(state, buf)
        (tmp / "state.pt").write_bytes(buf.getvalue())
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return directory


def load_state(directory: Path) -> dict[str, Any]:
    return torch.load(directory / "state.pt", weights_only=True, map_location="cpu")


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    steps = sorted(p for p in ckpt_dir.glob("step-*") if (p / "meta.json").is_file())
    return steps[-1] if steps else None


def prune(ckpt_dir: Path, keep_last: int) -> None:
    steps = sorted(p for p in ckpt_dir.glob("step-*") if p.is_dir())
    for p in steps[:-keep_last]:
        shutil.rmtree(p, ignore_errors=True)
