"""Evaluation over a loader: streaming metrics, loss, OOM-safe (splits only the eval batch).

Under torchrun every rank evaluates its own shard, which may hold fewer batches than the other
ranks' shards, or none. Nothing here may then wait for another rank batch by batch: a DDP model is
evaluated through its inner module (DDP's forward is a collective), every sum lives on the
training device and is reduced once at the end, and only FSDP, whose forward gathers the
weights, keeps the ranks in lockstep (idle ranks repeat a forward that is not counted).
"""
from __future__ import annotations

import torch

from ..errors import TrainingError
from .distributed import active, all_reduce_max, all_reduce_sum, is_sharded, unwrap
from .precision import accumulator, autocast

#: an out-of-memory error splits the batch at most this finely before it is raised
MAX_CHUNKS = 64


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def batch_rows(batch: dict) -> int:
    """The number of examples in a collated batch (the length of its first sized value)."""
    return next(len(v) for v in batch.values() if hasattr(v, "__len__"))


def slice_rows(batch: dict, start: int, end: int) -> dict:
    """Rows ``start:end`` of a collated batch; values that are not per-row are kept whole."""
    size = batch_rows(batch)
    if start == 0 and end >= size:
        return batch
    return {k: (v[start:end] if hasattr(v, "__getitem__") and hasattr(v, "__len__") and len(v) == size else v)
            for k, v in batch.items()}


def _chunks(batch: dict, n: int) -> list[dict]:
    """``batch`` split into ``n`` parts of (nearly) equal size."""
    size = batch_rows(batch)
    step = -(-size // n)
    return [slice_rows(batch, s, s + step) for s in range(0, size, step)]


def to_device(batch, device, non_blocking: bool = False):
    if isinstance(batch, dict):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    return batch


def _no_rows(x):
    """``x`` with its rows cut to none (tensors and dicts of them): a metric update that adds nothing."""
    if isinstance(x, torch.Tensor) and x.dim():
        return x[:0]
    if isinstance(x, dict):
        return {k: _no_rows(v) for k, v in x.items()}
    return x


def _stand_in_batch(loader, device):
    """One example of the loader's dataset, collated: what a rank with an empty shard runs."""
    dataset, collate = getattr(loader, "dataset", None), getattr(loader, "collate_fn", None)
    if dataset is None or collate is None or len(dataset) == 0:
        return None
    return to_device(collate([dataset[0]]), device)


@torch.no_grad()
def evaluate_loader(model, task, loader, loss_fn, metrics, device, precision: str = "fp32", collect: bool = False):
    """Run the model over ``loader``; return the flat metric dict (and outputs when ``collect``).

    An out-of-memory error splits the batch in two (up to :data:`MAX_CHUNKS` parts) and goes on
    with the rows not yet counted, so no example is counted twice."""
    model = unwrap(model)
    lockstep = is_sharded(model)  # FSDP gathers weights in forward: ranks run as many forwards
    model.eval()
    for m in metrics:
        m.reset()
    loss_sum = accumulator(device, 2)  # sum of loss x rows, rows
    collected = []
    chunks, forwards = 1, 0

    def forward(part):
        with autocast(device, precision):
            out = task.forward(model, part)
            loss = task.loss(out, part, loss_fn) if "targets" in part else None
        return out, loss

    for batch in loader:
        batch = to_device(batch, device)
        size, done = batch_rows(batch), 0
        while done < size:
            end = min(size, done + -(-size // chunks))
            part = slice_rows(batch, done, end)
            try:
                forwards += 1
                out, loss = forward(part)
                scored = task.metric_inputs(out, part) if loss is not None else None
            except RuntimeError as e:
                if not _is_oom(e) or chunks >= MAX_CHUNKS:
                    raise
                if lockstep:
                    raise TrainingError("out of memory during evaluation with train.strategy: fsdp (ranks cannot "
                                        "retry alone: their weight gathers would no longer line up); "
                                        "lower train.eval_batch_size") from e
                chunks *= 2
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            n = end - done
            if scored is not None:
                loss_sum[0] += loss.detach().to(loss_sum.dtype) * n
                loss_sum[1] += n
                for m in metrics:
                    m.update(*scored)
            if collect:
                collected.append(out.detach().float().cpu())
            done = end
    if forwards == 0 and active():
        # an empty shard: one stand-in forward shapes the metric state (a zero-row update) like the
        # other ranks' state, so the sums line up; with FSDP it is also this rank's lockstep forward
        stand_in = _stand_in_batch(loader, device)
        if stand_in is not None:
            forwards += 1
            out, loss = forward(stand_in)
            if loss is not None:
                preds, targets = task.metric_inputs(out, stand_in)
                for m in metrics:
                    m.update(_no_rows(preds), _no_rows(targets))
    if lockstep:
        missing = all_reduce_max(forwards) - forwards
        if missing:
            stand_in = _stand_in_batch(loader, device)
            for _ in range(missing):  # keeps the other ranks' all-gathers company; not counted
                forward(stand_in)
    all_reduce_sum([loss_sum] + [t for m in metrics for t in m.state_tensors()])
    results = {"loss": float(loss_sum[0] / loss_sum[1].clamp(min=1))}
    artifacts = {}
    for m in metrics:
        results.update(m.compute())
        artifacts.update(m.artifacts())
    model.train()
    return (results, artifacts, collected) if collect else (results, artifacts)
