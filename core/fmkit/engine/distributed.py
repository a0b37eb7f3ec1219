"""torchrun integration: process group, DDP/FSDP wrapping, cross-rank reductions.

fmkit never launches processes itself: ``torchrun --nproc_per_node=N -m fmkit train RECIPE``
starts the ranks and sets ``RANK``/``WORLD_SIZE``; this module joins them.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init(device: torch.device) -> None:
    if int(os.environ.get("WORLD_SIZE", 1)) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensors: list[torch.Tensor]) -> None:
    if not active():
        return
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)


def wrap(model: torch.nn.Module, device: torch.device, strategy: str):
    """Wrap the model for data-parallel training; FSDP shards parameters across ranks."""
    if not active():
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import FullyShardedDataParallel

        return FullyShardedDataParallel(model, device_id=device if device.type == "cuda" else None)
    ids = [device.index or 0] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def barrier() -> None:
    if active():
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
