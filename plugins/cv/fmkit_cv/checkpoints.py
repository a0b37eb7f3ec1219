"""Loading pretrained weights safely, including checkpoints written with another naming scheme.

:func:`read_state_dict` never executes code: safetensors, or ``torch.load(weights_only=True)``.
:func:`load_foreign_state` maps a checkpoint onto a model: tensors whose names match (after
stripping wrappers such as ``module.``) load by name; the rest load by order, each pair checked
for an identical shape. The classifier head is left newly initialised when its shape differs (other
classes). The result is a report of what matched how and what did not.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from fmkit.errors import UsageError

log = logging.getLogger("fmkit.cv")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.safetensors", "pytorch_model.bin", "model.pth", "model.pt")
_PREFIXES = ("module.", "model.", "net.", "backbone.", "_orig_mod.")


def find_weights_file(path: Path) -> Path:
    """The weights file inside a folder (``model.safetensors`` first), or ``path`` itself."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise UsageError(f"model.pretrained: {path} does not exist")
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return path / name
    found = sorted(p for ext in ("*.safetensors", "*.pth", "*.pt", "*.bin") for p in path.glob(ext))
    if len(found) == 1:
        return found[0]
    raise UsageError(f"model.pretrained: {path} holds {len(found) or 'no'} weight files; point at one file "
                     f"(looked for {', '.join(WEIGHT_FILES)}, *.safetensors, *.pth, *.pt, *.bin)")


def read_state_dict(path: Path) -> dict:
    """Tensors of a safetensors file or a pickled state dict (``weights_only=True``: no code runs)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise UsageError(f"model.pretrained: {path} is not a plain state dict that loads safely "
                         f"(weights_only=True): {e}. Convert it to safetensors") from None
    for key in ("state_dict", "model", "model_state", "module"):  # common training-checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise UsageError(f"model.pretrained: {path} holds a {type(state).__name__}, not a state dict")
    return {k: v for k, v in state.items() if hasattr(v, "shape")}


@dataclass
class LoadReport:
    """What :func:`load_foreign_state` did, for the log and for tests."""

    by_name: list[str] = field(default_factory=list)
    by_order: list[tuple[str, str]] = field(default_factory=list)
    head_reinitialised: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{len(self.by_name)} tensors matched by name, {len(self.by_order)} by order, "
                f"{len(self.head_reinitialised)} head tensors newly initialised, {len(self.missing)} missing, "
                f"{len(self.unused)} unused")

    def as_dict(self) -> dict:
        return {"by_name": len(self.by_name), "by_order": len(self.by_order),
                "head_reinitialised": self.head_reinitialised, "missing": self.missing, "unused": self.unused}


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p):], True
    return key


def load_foreign_state(model, source: dict, head_prefixes: tuple[str, ...] = (), mapping: str = "auto",
                       strict: bool = True) -> LoadReport:
    """Copy ``source`` tensors into ``model``.

    ``mapping``: ``name`` (names only), ``order`` (order only) or ``auto`` (names, then order for the
    rest). With ``strict``, every non-head tensor of the model must be filled, or a
    :class:`UsageError` lists what was not; shapes must always match exactly.
    """
    import torch

    target = model.state_dict()
    is_head = lambda k: any(k == h or k.startswith(h + ".") for h in head_prefixes)  # noqa: E731
    src = {_strip(k): v for k, v in source.items()}
    report, loaded, used = LoadReport(), {}, set()
    if mapping in ("auto", "name"):
        for k, t in target.items():
            if k in src and tuple(src[k].shape) == tuple(t.shape):
                loaded[k] = src[k]
                used.add(k)
                report.by_name.append(k)
    if mapping in ("auto", "order"):
        # batch-norm step counters (scalars) are absent from many checkpoints: never mapped by order
        skip = lambda k, t: k.endswith("num_batches_tracked") or t.dim() == 0  # noqa: E731
        rest_t = [k for k in target if k not in loaded and not skip(k, target[k])]
        rest_s = [k for k in src if k not in used and not skip(k, src[k])]
        for i, (tk, sk) in enumerate(zip(rest_t, rest_s)):
            ts, ss = tuple(target[tk].shape), tuple(src[sk].shape)
            if ts != ss:
                if is_head(tk):  # another number of classes: the head stays new
                    used.add(sk)
                    continue
                raise UsageError(
                    f"model.pretrained: tensor #{i} of the remaining order does not fit: checkpoint {sk!r} has shape "
                    f"{ss}, model {tk!r} needs {ts}. The checkpoint is not this architecture (check "
                    "model.architecture) or its tensors are in another order (use pretrained_mapping: name)")
            loaded[tk] = src[sk]
            used.add(sk)
            report.by_order.append((sk, tk))
    for k in target:
        if k in loaded:
            continue
        if is_head(k):
            report.head_reinitialised.append(k)
        elif not (k.endswith("num_batches_tracked") or target[k].dim() == 0):
            report.missing.append(k)
    report.unused = [k for k in src if k not in used]
    if strict and report.missing:
        raise UsageError(f"model.pretrained: {len(report.missing)} model tensors are not in the checkpoint "
                         f"(first: {report.missing[:5]}); {report.summary()}. Set pretrained_strict: false to "
                         "accept a partial load")
    with torch.no_grad():
        for k, v in loaded.items():
            target[k].copy_(v.to(target[k].dtype))
    log.info("pretrained weights: %s", report.summary())
    return report
