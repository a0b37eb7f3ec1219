"""Forward and backward of the micro-batches of one accumulation window, surviving out-of-memory.

An out-of-memory error doubles the number of parts each loader batch is split into and goes on
with the rows not yet back-propagated, so the gradient of the window, and so the effective batch,
is the one the run would have had without the error:

- in a forward, nothing has reached the gradients yet: the failed part is retried, split finer;
- in a backward, some gradients may already hold part of that backward: they are zeroed and the
  window's earlier loader batches (kept until the optimizer step) are replayed, split finer.

Under DDP every backward but the last of the window runs under ``no_sync``, so each rank makes
exactly one gradient all-reduce per window whatever its retries (the DDP wrapper is built without
its per-forward buffer broadcast for the same reason). A rank cannot retry alone the backward
that all-reduces, nor anything under FSDP (each forward gathers weights with the other ranks):
those end the run with an error that says what to change.
"""
from __future__ import annotations

import contextlib
import logging

import torch

from ..errors import TrainingError
from . import distributed
from .evaluation import MAX_CHUNKS, _is_oom, batch_rows, slice_rows
from .precision import autocast

log = logging.getLogger("fmkit")


class _RestartWindow(Exception):
    """An out-of-memory error inside a backward: the window's gradients must be rebuilt."""


class MicroStepper:
    """Runs the micro-batches of accumulation windows for a trainer (see the module docstring)."""

    def __init__(self, trainer):
        self.t = trainer
        #: parts each loader batch is split into (doubles on out-of-memory; saved in checkpoints)
        self.chunks = 1
        #: the loader batches already back-propagated in the current window (replayed after a backward OOM)
        self.window: list[dict] = []
        self.oom_events: list[dict] = []

    def step(self, batch: dict, scale: float, sync: bool) -> torch.Tensor:
        """Forward and backward of one loader batch; its gradient is added, scaled by ``scale``.

        ``sync``: the batch ends the window (its last backward all-reduces under DDP). Returns the
        batch's mean loss as a device tensor (non-finite when the loss was; the caller decides)."""
        replay: list[dict] = []
        while True:
            try:
                for old in replay:  # their loss was counted when they first ran
                    self._rows(old, scale, False)
                loss = self._rows(batch, scale, sync)
                break
            except _RestartWindow:
                self.t.optimizer.zero_grad(set_to_none=True)
                replay = list(self.window)
        self.window.append(batch)
        return loss

    def end_window(self) -> None:
        """The window's gradient was used (or dropped): forget its batches."""
        self.window.clear()

    def _rows(self, batch: dict, scale: float, sync: bool) -> torch.Tensor:
        size, done, total = batch_rows(batch), 0, None
        while done < size:
            end = min(size, done + -(-size // self.chunks))
            last = sync and end == size
            try:
                loss = self._part(slice_rows(batch, done, end), (end - done) / size * scale, last)
            except RuntimeError as e:
                if not _is_oom(e):
                    raise
                in_backward = self._phase == "backward"
                self._split_finer(e, unrecoverable=in_backward and last)
                if in_backward:
                    raise _RestartWindow() from e
                continue
            part_loss = loss * ((end - done) / size)
            total = part_loss if total is None else total + part_loss
            done = end
        return total

    _phase: str | None = None

    def _part(self, part: dict, weight: float, sync: bool) -> torch.Tensor:
        t = self.t
        model = t.model
        quiet = contextlib.nullcontext() if sync or not hasattr(model, "no_sync") else model.no_sync()
        with quiet:
            self._phase = "forward"
            with autocast(t.device, t.cfg.precision):
                out = t.run.task.forward(model, part)
                loss = t.run.task.loss(out, part, t.loss_fn)
                if t.distiller is not None:  # distill: alpha * the teacher term + (1 - alpha) * the task's loss
                    loss = t.distiller.combine(loss, out, part)
            self._phase = "backward"
            weighted = loss * weight
            (t.scaler.scale(weighted) if t.scaler else weighted).backward()
            self._phase = None
        return loss.detach()

    def _split_finer(self, error: BaseException, unrecoverable: bool) -> None:
        t = self.t
        self._phase = None
        if self.chunks >= MAX_CHUNKS:
            raise error
        if distributed.is_sharded(t.model):
            raise TrainingError("out of memory with train.strategy: fsdp: a rank cannot retry alone (its weight "
                                "gathers would no longer line up with the other ranks'); lower train.batch_size "
                                "and raise train.grad_accum_steps to keep the effective batch") from error
        if unrecoverable and distributed.active():
            raise TrainingError("out of memory in the backward pass that all-reduces gradients across ranks (DDP): "
                                "it cannot be retried on one rank alone; lower train.batch_size and raise "
                                "train.grad_accum_steps to keep the effective batch") from error
        if t.device.type == "cuda":
            torch.cuda.empty_cache()
        self.chunks *= 2
        step = t.run.global_step
        self.oom_events.append({"step": step, "micro_batches": self.chunks,
                                "effective_grad_accum": self.chunks * t.cfg.grad_accum_steps})
        log.warning("out of memory at step %d: splitting each batch into %d micro-batches "
                    "(accumulation x%d, effective batch unchanged)", step, self.chunks,
                    self.chunks * t.cfg.grad_accum_steps)
