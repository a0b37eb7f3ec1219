"""Evaluation over a loader: streaming metrics, loss, OOM-safe (halves only the eval batch)."""
from __future__ import annotations

import torch

from .distributed import all_reduce_max, all_reduce_sum, is_sharded
from .precision import autocast


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def _chunks(batch: dict, n: int) -> list[dict]:
    if n == 1:
        return [batch]
    size = next(len(v) for v in batch.values() if hasattr(v, "__len__"))
    step = -(-size // n)
    out = []
    for s in range(0, size, step):
        out.append({k: (v[s:s + step] if hasattr(v, "__getitem__") and hasattr(v, "__len__") and len(v) == size else v)
                    for k, v in batch.items()})
    return out


def to_device(batch, device, non_blocking: bool = False):
    if isinstance(batch, dict):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    return batch


@torch.no_grad()
def evaluate_loader(model, task, loader, loss_fn, metrics, device, precision: str = "fp32", collect: bool = False):
    """Run the model over ``loader``; return the flat metric dict (and outputs when ``collect``)."""
    model.eval()
    for m in metrics:
        m.reset()
    loss_sum = torch.zeros(2, dtype=torch.float64)
    collected = []
    chunks = 1
    lockstep = is_sharded(model)  # FSDP gathers weights in forward: ranks run as many forwards
    first, forwards = None, 0
    for batch in loader:
        batch = to_device(batch, device)
        first = batch if first is None else first
        forwards += 1
        while True:
            try:
                for part in _chunks(batch, chunks):
                    with autocast(device, precision):
                        out = task.forward(model, part)
                        loss = task.loss(out, part, loss_fn) if "targets" in part else None
                    n = len(next(iter(part.values())))
                    if loss is not None:
                        loss_sum += torch.tensor([float(loss) * n, n], dtype=torch.float64)
                        preds, targets = task.metric_inputs(out, part)
                        for m in metrics:
                            m.update(preds, targets)
                    if collect:
                        collected.append(out.detach().float().cpu())
                break
            except RuntimeError as e:
                if not _is_oom(e) or chunks >= 64:
                    raise
                chunks *= 2
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    if lockstep:
        for _ in range(all_reduce_max(forwards) - forwards):
            if first is None:
                raise RuntimeError("a rank has no evaluation batch; use a smaller eval batch size with FSDP")
            with autocast(device, precision):
                task.forward(model, first)  # keeps the other ranks' all-gathers company; not counted
    all_reduce_sum([loss_sum] + [t for m in metrics for t in m.state_tensors()])
    results = {"loss": float(loss_sum[0] / loss_sum[1].clamp(min=1))}
    artifacts = {}
    for m in metrics:
        results.update(m.compute())
        artifacts.update(m.artifacts())
    model.train()
    return (results, artifacts, collected) if collect else (results, artifacts)
