"""Device choice and mixed precision."""
from __future__ import annotations

import contextlib

import torch


def pick_device(setting: str) -> torch.device:
    if setting != "auto":
        return torch.device(setting)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str):
    if precision == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def accumulator(device: torch.device, size: int = 0) -> torch.Tensor:
    """A zeroed running-sum tensor on the training device (``size`` 0: a scalar), in float64 where
    the device has it (MPS has no float64), so adding a step's loss to it never crosses devices."""
    dtype = torch.float32 if device.type == "mps" else torch.float64
    return torch.zeros(size, dtype=dtype, device=device) if size else torch.zeros((), dtype=dtype, device=device)
