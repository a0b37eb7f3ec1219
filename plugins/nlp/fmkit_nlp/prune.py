"""Structured pruning of transformers encoders: attention heads and feed-forward neurons.

Importance is Michel et al. (2019)'s: the gradient of the loss with respect to a mask on a head's
(or neuron's) output, in absolute value, summed over training batches. That gradient equals the sum
of weight times gradient over the head's columns of the attention output projection (the neuron's
column of the FFN output projection), so it is read off ``W * W.grad`` after one backward pass per
batch. Head scores are normalised per layer (L2) and ranked across layers (the least important
heads go, whichever layer they are in, keeping at least one per layer); FFN neurons are ranked per
layer, the same share removed from each.

Removing is physical: the query, key and value projections lose the rows of removed heads, the
output projection the matching columns; the intermediate projection loses rows, the FFN output
projection columns. The model is then smaller and faster, and exports to ONNX as it is. The shape
(heads and FFN width per layer) is described as plain JSON; :func:`restore` gives a freshly built
model that shape before the trained weights are loaded.

Any BERT-style layer (``attention.self.{query,key,value}``, ``attention.output.dense``,
``intermediate.dense``, ``output.dense``: BERT, RoBERTa, MiniLM, ELECTRA, XLM-R...) is handled.
"""
from __future__ import annotations

import logging

import torch
from fmkit.errors import UsageError

log = logging.getLogger("fmkit")

KIND = "fmkit-nlp/encoder-layers"
KINDS = ("heads", "ffn")


def _is_layer(m) -> bool:
    att = getattr(m, "attention", None)
    sa = getattr(att, "self", None)
    return (all(isinstance(getattr(sa, n, None), torch.nn.Linear) for n in ("query", "key", "value"))
            and isinstance(getattr(getattr(att, "output", None), "dense", None), torch.nn.Linear)
            and isinstance(getattr(getattr(m, "intermediate", None), "dense", None), torch.nn.Linear)
            and isinstance(getattr(getattr(m, "output", None), "dense", None), torch.nn.Linear)
            and hasattr(sa, "attention_head_size"))


def encoder_layers(model) -> list:
    """The BERT-style transformer layers of ``model``, in order (empty for other models)."""
    return [m for _, m in model.named_modules() if _is_layer(m)]


def _sliced(linear: torch.nn.Linear, index: torch.Tensor, dim: int) -> torch.nn.Linear:
    """A new ``Linear`` keeping the output rows (``dim=0``) or input columns (``dim=1``) in ``index``."""
    index = index.to(linear.weight.device)
    w = linear.weight.detach().index_select(dim, index).clone()
    b = linear.bias.detach().clone() if linear.bias is not None else None
    if b is not None and dim == 0:
        b = b.index_select(0, index).clone()
    new = torch.nn.Linear(w.shape[1], w.shape[0], bias=b is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    new.weight.requires_grad_(linear.weight.requires_grad)
    if b is not None:
        new.bias.requires_grad_(linear.bias.requires_grad)
    return new


def keep_heads(layer, heads: list[int]) -> None:
    """Keep only the listed heads (indices into the layer's current heads) of a layer."""
    sa, out = layer.attention.self, layer.attention.output
    size = sa.attention_head_size
    idx = torch.tensor([h * size + i for h in sorted(heads) for i in range(size)], dtype=torch.long)
    for name in ("query", "key", "value"):
        setattr(sa, name, _sliced(getattr(sa, name), idx, 0))
    out.dense = _sliced(out.dense, idx, 1)
    sa.num_attention_heads = len(heads)
    sa.all_head_size = len(heads) * size


def keep_neurons(layer, neurons: list[int]) -> None:
    """Keep only the listed FFN (intermediate) neurons of a layer."""
    idx = torch.tensor(sorted(neurons), dtype=torch.long)
    layer.intermediate.dense = _sliced(layer.intermediate.dense, idx, 0)
    layer.output.dense = _sliced(layer.output.dense, idx, 1)


def describe(layers) -> dict:
    """The model's shape as plain JSON: heads, head size and FFN width per layer."""
    return {"kind": KIND, "layers": [{"heads": int(m.attention.self.num_attention_heads),
                                      "head_size": int(m.attention.self.attention_head_size),
                                      "ffn": int(m.intermediate.dense.out_features)} for m in layers]}


def importance(model, layers, batches: list[dict], loss) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``(heads, neurons)``: per layer, the summed |mask gradient| of each head and each FFN neuron."""
    weights = [w for m in layers for w in (m.attention.output.dense.weight, m.output.dense.weight)]
    before = [w.requires_grad for w in weights]
    for w in weights:
        w.requires_grad_(True)
    heads = [torch.zeros(m.attention.self.num_attention_heads) for m in layers]
    neurons = [torch.zeros(m.intermediate.dense.out_features) for m in layers]
    was_training = model.training
    model.eval()  # no dropout: the same batches give the same scores
    try:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            loss(model, batch).backward()
            with torch.no_grad():
                for i, m in enumerate(layers):
                    w = m.attention.output.dense.weight
                    size = m.attention.self.attention_head_size
                    per_col = (w * w.grad).sum(0).float()
                    heads[i] += per_col.view(-1, size).sum(-1).abs().cpu()
                    w2 = m.output.dense.weight
                    neurons[i] += (w2 * w2.grad).sum(0).float().abs().cpu()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        for w, flag in zip(weights, before):
            w.requires_grad_(flag)
    return heads, neurons


def _heads_to_keep(scores: list[torch.Tensor], share: float) -> list[list[int]]:
    """Per layer, the heads kept when ``share`` of all heads go by globally ranked, per-layer L2-normalised
    importance (Michel et al. 2019), at least one head left in every layer."""
    normed = [s / (s.norm() + 1e-12) for s in scores]
    total = sum(len(s) for s in scores)
    remove = int(round(share * total))
    ranked = sorted((float(v), li, h) for li, s in enumerate(normed) for h, v in enumerate(s.tolist()))
    left = [len(s) for s in scores]
    gone: set[tuple[int, int]] = set()
    for _, li, h in ranked:
        if len(gone) >= remove:
            break
        if left[li] > 1:
            gone.add((li, h))
            left[li] -= 1
    return [[h for h in range(len(s)) if (li, h) not in gone] for li, s in enumerate(scores)]


def _neurons_to_keep(scores: torch.Tensor, share: float) -> list[int]:
    n = len(scores)
    keep = max(1, n - int(round(share * n)))
    return sorted(torch.topk(scores, keep).indices.tolist())


def prune(model, fractions: dict, batches: list[dict], loss) -> dict | None:
    """Remove ``fractions["heads"]`` of the heads and ``fractions["ffn"]`` of the FFN neurons of the
    model's encoder layers; ``None`` when the model has no BERT-style layers (not ours)."""
    layers = encoder_layers(model)
    if not layers:
        return None
    if getattr(model, "lora", False):
        raise UsageError("prune: this model has LoRA adapters; train it without model.lora (or export the merged "
                         "model and fine-tune that) before pruning")
    other = sorted(set(fractions) - set(KINDS))
    if other:
        raise UsageError(f"prune: fmkit-nlp removes {' and '.join(KINDS)} from transformers encoders, not "
                         f"{', '.join(other)}; use --heads and --ffn")
    shape_before = describe(layers)
    heads, neurons = importance(model, layers, batches, loss)
    if fractions.get("heads"):
        for m, keep in zip(layers, _heads_to_keep(heads, fractions["heads"])):
            if len(keep) < m.attention.self.num_attention_heads:
                keep_heads(m, keep)
    if fractions.get("ffn"):
        for m, scores in zip(layers, neurons):
            keep_neurons(m, _neurons_to_keep(scores, fractions["ffn"]))
    structure = describe(layers)
    model.fmkit_structure = structure
    before = [(la["heads"], la["ffn"]) for la in shape_before["layers"]]
    after = [(la["heads"], la["ffn"]) for la in structure["layers"]]
    summary = {"heads": f"{sum(h for h, _ in before)} -> {sum(h for h, _ in after)}",
               "ffn": f"{sum(f for _, f in before)} -> {sum(f for _, f in after)}",
               "heads_per_layer": [h for h, _ in after]}
    return {**structure, "summary": summary}


def restore(model, structure: dict) -> bool | None:
    """Give a freshly built model the recorded shape (its values are replaced by the trained weights
    next); ``None`` for a structure fmkit-nlp did not write."""
    if not isinstance(structure, dict) or structure.get("kind") != KIND:
        return None
    layers = encoder_layers(model)
    shape = structure.get("layers") or []
    if len(layers) != len(shape):
        raise UsageError(f"the pruned shape has {len(shape)} encoder layers, the rebuilt model {len(layers)}: the "
                         "model section no longer builds the model that was pruned")
    for m, want in zip(layers, shape):
        sa = m.attention.self
        if int(want["head_size"]) != sa.attention_head_size or int(want["heads"]) > sa.num_attention_heads \
                or int(want["ffn"]) > m.intermediate.dense.out_features or min(int(want["heads"]), int(want["ffn"])) < 1:
            raise UsageError(f"the pruned shape {want} does not fit the rebuilt layer ({sa.num_attention_heads} heads of "
                             f"{sa.attention_head_size}, FFN {m.intermediate.dense.out_features})")
        if int(want["heads"]) < sa.num_attention_heads:
            keep_heads(m, list(range(int(want["heads"]))))
        if int(want["ffn"]) < m.intermediate.dense.out_features:
            keep_neurons(m, list(range(int(want["ffn"]))))
    model.fmkit_structure = {"kind": KIND, "layers": shape}
    return True
