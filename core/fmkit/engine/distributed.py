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


def _collective_device() -> torch.device:
    """Where collective tensors must live: the rank's GPU under NCCL, the CPU under gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _coalesced(tensors: list[torch.Tensor], collective) -> None:
    """Run ``collective`` on one flat buffer per dtype holding ``tensors``, then copy back in place.

    Tensors may live anywhere (metric sums on the CPU, losses on the GPU): the buffer is on the
    collective's device, so NCCL and gloo both work, with one call per dtype instead of one per tensor.
    """
    device = _collective_device()
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for dtype, group in by_dtype.items():
        flat = torch.cat([t.detach().reshape(-1).to(device) for t in group])
        collective(flat)
        offset = 0
        for t in group:
            n = t.numel()
            t.copy_(flat[offset:offset + n].view_as(t))
            offset += n


def all_reduce_sum(tensors: list[torch.Tensor]) -> None:
    """Sum ``tensors`` over ranks, in place. Every rank must pass tensors of the same shapes:
    checked first (one small gather), so a mismatch is an error naming the shapes, not a hang."""
    if not active():
        return
    shapes = [(tuple(t.shape), str(t.dtype)) for t in tensors]
    every = [None] * dist.get_world_size()
    dist.all_gather_object(every, shapes)
    if any(s != shapes for s in every):
        raise RuntimeError(f"ranks hold differently shaped tensors to sum: {every}")
    _coalesced(tensors, lambda flat: dist.all_reduce(flat, op=dist.ReduceOp.SUM))


def any_rank(*flags: bool) -> tuple[bool, ...]:
    """Each flag OR-ed over ranks (one small all-reduce); the flags themselves outside torchrun."""
    if not active():
        return tuple(bool(f) for f in flags)
    t = torch.tensor([int(bool(f)) for f in flags], dtype=torch.long, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in t.tolist())


def sync_buffers(model: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (batch-norm statistics): DDP is built without its per-forward
    buffer broadcast, a collective per forward call that would misalign ranks which make different
    numbers of forward calls (an out-of-memory retry); the engine calls this once per optimizer step."""
    if not active() or is_sharded(model):
        return
    buffers = [b for b in unwrap(model).buffers() if b.numel()]
    if buffers:
        _coalesced(buffers, lambda flat: dist.broadcast(flat, src=0))


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def wrap(model: torch.nn.Module, device: torch.device, strategy: str):
    """Wrap the model for data-parallel training (DDP), or shard it across ranks (FSDP).

    FSDP is PyTorch's ``fully_shard`` (FSDP2, which runs on CPU with gloo as well as on GPUs):
    every layer the model lists in ``fmkit_layer_prefixes()`` becomes its own shard unit, then
    the whole model. The module is sharded in place, so it stays the object the engine holds.
    """
    if not active():
        return model
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        from ..model_parts import layer_prefixes

        names = [p.rstrip(".") for p in layer_prefixes(model)]
        for name in names:
            try:
                unit = model.get_submodule(name)
            except AttributeError:
                continue
            if any(True for _ in unit.parameters()):
                fully_shard(unit)
        fully_shard(model)
        return model
    import inspect

    ids = [device.index or 0] if device.type == "cuda" else None
    ddp = torch.nn.parallel.DistributedDataParallel
    # no buffer broadcast inside forward (see sync_buffers); buffers are synced at each optimizer step
    no_forward_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
                       else {"broadcast_buffers": False})
    wrapped = ddp(model, device_ids=ids, find_unused_parameters=True, **no_forward_sync)
    sync_buffers(wrapped)
    return wrapped


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether ``model`` is sharded with FSDP: its state must then be gathered on every rank."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - older torch
        return False
    return isinstance(model, FSDPModule)


def _options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole (unsharded) state dict of a sharded model, on rank 0's CPU. Collective: every rank calls it."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    state = get_model_state_dict(model, options=_options())
    return {k: v.contiguous() for k, v in state.items()}


def full_optimizer_state(model: torch.nn.Module, optimizer) -> dict:
    """The whole optimizer state of a sharded model (keyed by parameter names), on rank 0. Collective."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=_options())


def load_full_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a whole state dict into a sharded model; every rank passes the same full state."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, strict=False))


def load_full_optimizer_state(model: torch.nn.Module, optimizer, state: dict) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def all_reduce_max(value: int) -> int:
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.long, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t)


def barrier() -> None:
    if active():
        dist.barrier()


_meetings = 0


def meet_before_exit() -> None:
    """All ranks wait for each other at the end of a run, through the rendezvous store.

    Not ``dist.barrier()``: gloo frees a collective's work object on its own thread after the
    collective returns, and if that happens while Python is shutting down (a rank with nothing
    left to do exits at once) the rank aborts ("terminate called without an active exception")
    although the run succeeded. Store operations run on the calling thread and leave nothing behind.
    """
    global _meetings
    if not active():
        return
    _meetings += 1
    try:
        store = dist.distributed_c10d._get_default_store()
    except Exception:  # pragma: no cover - a torch without the accessor
        dist.barrier()
        return
    import time

    key = f"fmkit/run-finished/{_meetings}"
    store.add(key, 1)
    while store.add(key, 0) < dist.get_world_size():
        time.sleep(0.02)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
