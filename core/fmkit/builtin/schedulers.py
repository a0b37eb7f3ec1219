"""Built-in schedules: constant, linear and cosine (each with warmup), step, reduce-on-plateau."""
from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from ..components import Params
from ..interfaces import ScheduleHandle


class WarmupParams(Params):
    #: warmup length as a fraction of all steps (ignored when warmup_steps is set)
    warmup_ratio: float = Field(0.0, ge=0, le=1)
    #: warmup length in optimizer steps; the learning rate rises linearly from near zero to lr (null: use warmup_ratio)
    warmup_steps: int | None = Field(None, ge=0)


class CosineParams(WarmupParams):
    #: final learning rate as a fraction of the peak
    min_lr_ratio: float = Field(0.0, ge=0, le=1)


class StepParams(Params):
    #: epochs (or steps, see interval) between two reductions of the learning rate
    step_size: int = 1
    #: factor the learning rate is multiplied by at each reduction
    gamma: float = 0.1
    #: whether step_size counts epochs or optimizer steps
    interval: Literal["epoch", "step"] = "epoch"


class PlateauParams(Params):
    #: factor the learning rate is multiplied by when the monitored metric stops improving
    factor: float = 0.1
    #: validations without improvement that are tolerated; the next one without improvement reduces the learning rate
    patience: int = 2
    #: min: the monitored metric should go down (a loss); max: it should go up (accuracy, F1). Set it
    #: to match evaluate.monitor: it is not taken from the metric
    mode: Literal["min", "max"] = "min"
    #: the learning rate is never reduced below this
    min_lr: float = 0.0


def _warmup(p: WarmupParams, total: int) -> int:
    return p.warmup_steps if p.warmup_steps is not None else int(round(p.warmup_ratio * total))


def _lambda(params: WarmupParams, context: dict, decay) -> ScheduleHandle:
    import torch

    total = max(1, int(context["total_steps"]))
    warm = _warmup(params, total)

    def fn(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return decay(progress)

    return ScheduleHandle(torch.optim.lr_scheduler.LambdaLR(context["optimizer"], fn), "step")


def constant(params: WarmupParams, context: dict) -> ScheduleHandle:
    """Constant learning rate after an optional linear warmup."""
    return _lambda(params, context, lambda _p: 1.0)


def linear(params: WarmupParams, context: dict) -> ScheduleHandle:
    """Linear warmup, then linear decay to zero."""
    return _lambda(params, context, lambda p: 1.0 - p)


def cosine(params: CosineParams, context: dict) -> ScheduleHandle:
    """Linear warmup, then cosine decay to ``min_lr_ratio`` of the peak."""
    m = params.min_lr_ratio
    return _lambda(params, context, lambda p: m + (1 - m) * 0.5 * (1 + math.cos(math.pi * p)))


def step(params: StepParams, context: dict) -> ScheduleHandle:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs (or steps)."""
    import torch

    sched = torch.optim.lr_scheduler.StepLR(context["optimizer"], params.step_size, params.gamma)
    return ScheduleHandle(sched, params.interval)


def plateau(params: PlateauParams, context: dict) -> ScheduleHandle:
    """Reduce the learning rate when the monitored validation metric stops improving."""
    import torch

    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        context["optimizer"], mode=params.mode, factor=params.factor, patience=params.patience, min_lr=params.min_lr
    )
    return ScheduleHandle(sched, "epoch", needs_metric=True)
