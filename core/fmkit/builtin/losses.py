"""Built-in losses: cross-entropy, binary cross-entropy with logits, MSE, L1, Huber."""
from __future__ import annotations

from typing import Literal

from ..components import Params


class CrossEntropyParams(Params):
    #: share of the target spread evenly over all classes (0: hard targets; 0.1 is common)
    label_smoothing: float = 0.0
    #: one weight per class, or "balanced" (inverse class frequency from the training data)
    class_weights: list[float] | Literal["balanced"] | None = None
    #: target value whose positions add nothing to the loss (padding and sub-word tokens use -100)
    ignore_index: int = -100


class BCEParams(Params):
    #: one weight per label for its positive examples (above 1: missing a positive costs more; null: 1 for all)
    pos_weight: list[float] | None = None


class HuberParams(Params):
    #: error size where the loss turns from squared (below) to linear (above), in the target's units
    delta: float = 1.0


class NoLossParams(Params):
    pass


def cross_entropy(params: CrossEntropyParams, context: dict):
    """Cross-entropy over class scores; accepts class indices or soft targets (mixup, cutmix)."""
    import torch
    import torch.nn.functional as F

    weight = params.class_weights
    if weight == "balanced":
        counts = context.get("class_counts")
        if not counts:
            raise ValueError("class_weights: balanced needs class counts from the task's training data")
        c = torch.tensor(counts, dtype=torch.float32).clamp(min=1)
        weight = (c.sum() / (len(c) * c)).tolist()
    w = torch.tensor(weight, dtype=torch.float32) if weight is not None else None
    smoothing, ignore = params.label_smoothing, params.ignore_index

    def loss(outputs, targets):
        logits = outputs.reshape(-1, outputs.shape[-1]) if outputs.dim() > 2 else outputs
        if targets.is_floating_point():  # soft targets
            t = targets.reshape(logits.shape)
        else:
            t = targets.reshape(-1)
        ww = w.to(logits.device) if w is not None else None
        return F.cross_entropy(logits.float(), t, weight=ww, label_smoothing=smoothing, ignore_index=ignore)

    return loss


def bce_with_logits(params: BCEParams, context: dict):
    """Binary cross-entropy on logits, for binary and multi-label targets."""
    import torch
    import torch.nn.functional as F

    pw = torch.tensor(params.pos_weight) if params.pos_weight else None

    def loss(outputs, targets):
        return F.binary_cross_entropy_with_logits(
            outputs.float(), targets.float().reshape(outputs.shape),
            pos_weight=pw.to(outputs.device) if pw is not None else None,
        )

    return loss


def _elementwise(fn_name: str):
    def factory(params: Params, context: dict):
        import torch.nn.functional as F

        fn = getattr(F, fn_name)
        kw = {"delta": params.delta} if fn_name == "huber_loss" else {}

        def loss(outputs, targets):
            return fn(outputs.float(), targets.float().reshape(outputs.shape), **kw)

        return loss

    return factory


mse = _elementwise("mse_loss")
l1 = _elementwise("l1_loss")
huber = _elementwise("huber_loss")
