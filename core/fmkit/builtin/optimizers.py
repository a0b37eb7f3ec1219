"""Built-in optimizers (AdamW, Adam, SGD) with sensible parameter groups.

Parameter groups: biases and normalisation weights get no weight decay; the head (the parameters
the model names in ``fmkit_head_prefixes``, see :mod:`fmkit.model_parts`) can have its own learning
rate (``head_lr``); models that declare ``fmkit_layer_prefixes()`` (embeddings first, then each
layer) get layer-wise learning-rate decay with ``layer_decay < 1``.
"""
from __future__ import annotations

from pydantic import Field

from ..components import Params
from ..errors import UsageError
from ..model_parts import head_prefixes, is_head_parameter, layer_prefixes, require_head_prefixes


class OptimizerParams(Params):
    #: learning rate: how far each step moves the weights (the peak value when a schedule warms up or decays it)
    lr: float = Field(1e-3, gt=0)
    #: weight decay: how strongly weights are pulled toward zero each step (0: none)
    weight_decay: float = Field(0.01, ge=0)
    #: learning rate of the task head; the backbone uses ``lr``
    head_lr: float | None = Field(None, gt=0)
    #: layer-wise learning-rate decay factor (1.0: off)
    layer_decay: float = Field(1.0, gt=0)
    #: exempt biases and normalisation weights (and every 1-D parameter) from weight decay
    no_decay_bias_and_norm: bool = True
    #: use torch's fused kernels: null where this device supports them, true always, false never
    fused: bool | None = None


class AdamParams(OptimizerParams):
    #: decay rates of the running averages of the gradient and of its square
    betas: tuple[float, float] = (0.9, 0.999)
    #: small number added to the denominator so a step never divides by zero
    eps: float = 1e-8


class AdamWParams(AdamParams):
    pass


class SGDParams(OptimizerParams):
    #: learning rate: how far each step moves the weights (the peak value when a schedule warms up or decays it)
    lr: float = Field(0.01, gt=0)
    #: share of the previous step's update carried into the next one (0: plain SGD)
    momentum: float = Field(0.9, ge=0)
    #: use Nesterov momentum (the gradient is taken at the look-ahead point)
    nesterov: bool = False
    #: weight decay: how strongly weights are pulled toward zero each step (0: none)
    weight_decay: float = Field(0.0, ge=0)


def _is_no_decay(name: str, param) -> bool:
    return param.ndim <= 1 or name.endswith(".bias") or "norm" in name.lower()


def param_groups(model, p: OptimizerParams) -> list[dict]:
    """Split a model's trainable parameters into groups by decay, head and layer depth."""
    heads = require_head_prefixes(model, "optimizer.head_lr") if p.head_lr is not None else head_prefixes(model)
    layers = layer_prefixes(model)
    if p.layer_decay != 1.0 and not layers:
        raise UsageError(f"optimizer.layer_decay needs the model's layers, but {type(model).__name__} declares "
                         "no fmkit_layer_prefixes() (see fmkit.model_parts); remove layer_decay from the recipe")
    groups: dict[tuple, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr = p.lr
        is_head = is_head_parameter(name, heads)
        if is_head and p.head_lr is not None:
            lr = p.head_lr
        elif layers and p.layer_decay != 1.0 and not is_head:
            depth = next((i for i, pref in reversed(list(enumerate(layers))) if name.startswith(pref)), 0)
            lr = p.lr * p.layer_decay ** (len(layers) - depth)
        wd = 0.0 if (p.no_decay_bias_and_norm and _is_no_decay(name, param)) else p.weight_decay
        g = groups.setdefault((lr, wd), {"params": [], "lr": lr, "weight_decay": wd})
        g["params"].append(param)
    return list(groups.values())


def _fused_kw(cls, model, p: OptimizerParams) -> dict:
    import inspect

    if "fused" not in inspect.signature(cls).parameters:
        return {}
    if p.fused is not None:
        return {"fused": p.fused}
    try:
        dev = next(model.parameters()).device.type
    except StopIteration:
        return {}
    return {"fused": True} if dev in ("cuda", "cpu", "mps") else {}


def adamw(params: AdamWParams, context: dict):
    """AdamW (decoupled weight decay), fused where torch supports it."""
    import torch

    model = context["model"]
    return torch.optim.AdamW(param_groups(model, params), lr=params.lr, betas=params.betas, eps=params.eps,
                             **_fused_kw(torch.optim.AdamW, model, params))


def adam(params: AdamParams, context: dict):
    """Adam with L2 weight decay, fused where torch supports it."""
    import torch

    model = context["model"]
    return torch.optim.Adam(param_groups(model, params), lr=params.lr, betas=params.betas, eps=params.eps,
                            **_fused_kw(torch.optim.Adam, model, params))


def sgd(params: SGDParams, context: dict):
    """SGD with momentum and optional Nesterov."""
    import torch

    model = context["model"]
    return torch.optim.SGD(param_groups(model, params), lr=params.lr, momentum=params.momentum,
                           nesterov=params.nesterov)
