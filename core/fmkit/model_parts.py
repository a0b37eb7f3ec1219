"""How a model tells the engine where its head and layers are (the core guesses no names).

A model (the ``torch.nn.Module`` a model factory returns) may declare:

``fmkit_head_prefixes``
    An attribute (tuple of str), or a method returning one: prefixes of the parameter names
    (``model.named_parameters()``) of its task head, such as ``("classifier",)``. The optimizers'
    ``head_lr`` and ``train.freeze_backbone_epochs`` need it; a parameter belongs to the head when
    its name equals a prefix or starts with the prefix followed by ``"."``.
``fmkit_layer_prefixes()``
    A method returning parameter-name prefixes from the input side up (embeddings first, then
    each layer). ``layer_decay < 1`` scales each layer's learning rate by depth, and
    ``train.strategy: fsdp`` makes each layer a shard unit.

The core has no default names: a model that declares nothing gets no head learning rate and no
layer decay, and a recipe that asks for them is refused with a message naming the model.
"""
from __future__ import annotations

from typing import Any

from .errors import UsageError


def head_prefixes(model: Any) -> tuple[str, ...]:
    """The head prefixes the model declares (empty when it declares none)."""
    heads = getattr(model, "fmkit_head_prefixes", None)
    if callable(heads):
        heads = heads()
    return tuple(h.rstrip(".") for h in heads or ())


def require_head_prefixes(model: Any, needed_by: str) -> tuple[str, ...]:
    """:func:`head_prefixes`, or a :class:`UsageError` saying what needs them and how to declare them."""
    heads = head_prefixes(model)
    if not heads:
        raise UsageError(
            f"{needed_by} needs the model's head, but {type(model).__name__} declares no fmkit_head_prefixes; "
            "give the model class an attribute fmkit_head_prefixes = ('<head module name>',) "
            "(see fmkit.model_parts), or remove that setting from the recipe")
    return heads


def is_head_parameter(name: str, heads: tuple[str, ...]) -> bool:
    """Whether the parameter ``name`` belongs to one of the ``heads`` prefixes."""
    return any(name == h or name.startswith(h + ".") for h in heads)


def layer_prefixes(model: Any) -> list[str]:
    """The layer prefixes the model declares, input side first (empty when it declares none)."""
    fn = getattr(model, "fmkit_layer_prefixes", None)
    return list(fn()) if callable(fn) else []
