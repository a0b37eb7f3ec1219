"""Channel pruning of timm convolutional networks with torch-pruning's dependency graph.

torch-pruning (Fang et al., "DepGraph", CVPR 2023) traces the network once and groups every
parameter that must shrink together when a channel goes (a convolution's output channels, the
batch norm after it, the next convolution's input channels, both sides of a residual sum, the
depthwise convolution in between), so whole channels are removed and the network stays
consistent. Channels are ranked by first-order Taylor importance, ``|sum(weight * gradient)|``
over each group, with the gradient accumulated over training batches; the classifier keeps its
classes. ``fractions["channels"]`` is the share of channels removed from every prunable layer.

The pruned network's shape is stored as plain JSON: for every module whose shape changed, its
parameter and buffer shapes and the attributes its ``forward`` reads (``in_channels``,
``out_channels``, ``groups``, ``num_features``, ``in_features``, ``out_features``).
:func:`restore` gives a freshly built network those shapes (empty tensors, then the trained
weights are loaded with safetensors); nothing is pickled.
"""
from __future__ import annotations

import logging

import torch
from fmkit.errors import UsageError

log = logging.getLogger("fmkit")

KIND = "fmkit-cv/module-shapes"
ATTRS = ("in_channels", "out_channels", "groups", "num_features", "in_features", "out_features")


def _shapes(model) -> dict:
    out = {}
    for name, m in model.named_modules():
        params = {k: list(p.shape) for k, p in m.named_parameters(recurse=False)}
        buffers = {k: list(b.shape) for k, b in m.named_buffers(recurse=False) if b is not None}
        if params or buffers:
            attrs = {a: int(getattr(m, a)) for a in ATTRS if isinstance(getattr(m, a, None), int)}
            out[name] = {"type": type(m).__name__, "params": params, "buffers": buffers, "attrs": attrs}
    return out


def _accumulate_gradients(model, batches: list[dict], loss) -> None:
    was_training = model.training
    model.eval()  # batch-norm statistics and dropout untouched while measuring
    try:
        model.zero_grad(set_to_none=True)
        for batch in batches:
            loss(model, batch).backward()
    finally:
        model.train(was_training)


def prune(model, fractions: dict, batches: list[dict], loss) -> dict | None:
    """Remove ``fractions["channels"]`` of the channels of a fmkit-cv timm model; ``None`` for other models."""
    from .models import TimmClassifier

    if not isinstance(model, TimmClassifier):
        return None
    other = sorted(set(fractions) - {"channels"})
    if other:
        raise UsageError(f"prune: fmkit-cv removes channels from convolutional networks, not {', '.join(other)}; "
                         "use --channels")
    try:
        import torch_pruning as tp
    except ImportError:
        raise UsageError("prune: channel pruning needs torch-pruning: pip install 'fmkit-cv[prune]'") from None
    share = float(fractions["channels"])
    heads = [m for n, m in model.net.named_modules() if ("net." + n) in model.fmkit_head_prefixes]
    before = _shapes(model)
    example = batches[0]["pixel_values"][:1]
    _accumulate_gradients(model, batches, loss)
    try:
        pruner = tp.pruner.MetaPruner(model, example, importance=tp.importance.TaylorImportance(),
                                      pruning_ratio=share, ignored_layers=heads)
        pruner.step()
    except Exception as e:  # an architecture the dependency graph cannot follow (attention, token mixing...)
        raise UsageError(f"prune: torch-pruning could not prune {model.net.__class__.__name__} "
                         f"({type(e).__name__}: {str(e)[:200]}); channel pruning suits convolutional networks "
                         "(ResNet, EfficientNet, MobileNet...)") from None
    finally:
        model.zero_grad(set_to_none=True)
    after = _shapes(model)
    changed = {n: s for n, s in after.items() if before.get(n) != s}
    if not changed:
        raise UsageError(f"prune: no channel of {model.net.__class__.__name__} could be removed at --channels {share}; "
                         "raise the share")
    convs = [(before[n]["attrs"].get("out_channels"), s["attrs"].get("out_channels")) for n, s in changed.items()
             if s["type"].startswith("Conv") and before[n]["attrs"].get("out_channels")]
    structure = {"kind": KIND, "architecture": model.net.__class__.__name__, "modules": changed}
    model.fmkit_structure = structure
    summary = {"channels": f"{sum(a for a, _ in convs)} -> {sum(b for _, b in convs)} (convolution outputs)",
               "modules_changed": len(changed)}
    return {**structure, "summary": summary}


def restore(model, structure: dict) -> bool | None:
    """Give a freshly built fmkit-cv model the recorded shapes; ``None`` for a structure fmkit-cv did not write."""
    if not isinstance(structure, dict) or structure.get("kind") != KIND:
        return None
    modules = dict(model.named_modules())
    for name, spec in (structure.get("modules") or {}).items():
        m = modules.get(name)
        if m is None or type(m).__name__ != spec.get("type"):
            raise UsageError(f"the pruned shape names {name!r} ({spec.get('type')}), which the rebuilt model "
                             f"{'lacks' if m is None else 'has as a ' + type(m).__name__}: the model section no longer "
                             "builds the network that was pruned")
        for attr, value in (spec.get("attrs") or {}).items():
            if attr in ATTRS:
                setattr(m, attr, int(value))
        for pname, shape in (spec.get("params") or {}).items():
            old = m._parameters.get(pname)
            if old is None:
                raise UsageError(f"the pruned shape gives {name}.{pname}, which the rebuilt model lacks")
            m._parameters[pname] = torch.nn.Parameter(torch.empty([int(d) for d in shape], dtype=old.dtype),
                                                      requires_grad=old.requires_grad)
        for bname, shape in (spec.get("buffers") or {}).items():
            old = m._buffers.get(bname)
            if old is None:
                raise UsageError(f"the pruned shape gives {name}.{bname}, which the rebuilt model lacks")
            m._buffers[bname] = torch.zeros([int(d) for d in shape], dtype=old.dtype)
    model.fmkit_structure = {k: v for k, v in structure.items() if k != "summary"}
    return True
