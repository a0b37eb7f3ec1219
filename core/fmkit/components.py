"""What a plugin registers: :class:`Component`, one entry of the registry.

A component has a kind, a short id, the plugin that provides it, a one-line summary, a pydantic
model of its parameters and a factory. Factory and parameter model may be given as import strings
(``"package.module:attr"``) so that listing components imports nothing heavy: they are loaded on
first use.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

#: Every kind of component, with what it is for. This tuple is the table of contents.
KINDS: dict[str, str] = {
    "task": "ties a modality together: batches, default loss and metrics, raw inputs, predictions",
    "model": "builds a torch.nn.Module for a task",
    "dataset": "loads raw examples per split from files",
    "transform": "cleans raw examples or augments training examples",
    "loss": "turns model outputs and targets into a scalar loss",
    "optimizer": "builds a torch optimizer over a model's parameters",
    "scheduler": "changes the learning rate during training",
    "metric": "scores predictions, streaming over batches",
    "exporter": "writes a trained model in a deployable format",
}


class Params(BaseModel):
    """Base class for component parameter models: unknown keys are errors, and so are NaN and
    infinite numbers (``lr: .nan`` would train into nonsense).

    Document a field with a ``#:`` comment line (or several) right above it; the text becomes
    the field's description, shown by ``fmkit new recipe``, ``fmkit components show`` and
    ``fmkit schema`` (an explicit ``Field(description=...)`` wins). Plugin recipe sections
    (:class:`fmkit.RecipeSection`) follow the same convention."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A field documented by a ``#:`` comment above it gets that text as its description, so it
        shows in starters, ``fmkit components show`` and ``fmkit schema`` (:mod:`fmkit.fielddocs`)."""
        super().__pydantic_init_subclass__(**kwargs)
        from .fielddocs import fill_descriptions

        if fill_descriptions(cls):
            cls.model_rebuild(force=True)


class NoParams(Params):
    """The parameter model of a component that takes no parameters: any key given to it is an
    error. It is :class:`Component`'s default ``params``, so such a component need not name it;
    a test that builds a task or model by hand without parameters passes an instance
    (``MyTask(fmkit.NoParams())``, as the plugin guide's test does)."""


def load_object(ref: Any) -> Any:
    """Resolve ``"module:attr"`` (or ``"module:attr.sub"``) to an object; pass others through."""
    if not isinstance(ref, str):
        return ref
    module_name, _, attr = ref.partition(":")
    obj = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


@dataclass
class Component:
    """One registered implementation of a component kind.

    Attributes:
        kind: one of :data:`KINDS`.
        name: the short id used in recipes (``cross-entropy``).
        factory: callable ``factory(params, context)`` or an import string to one.
        params: a :class:`Params` subclass (or import string) validating the recipe section.
        summary: one line shown by ``fmkit components list``.
        example: parameters that make a working instance (used by docs and the contract suite).
        plugin: the providing plugin's name; filled in by the registry.
        tags: free-form hints, such as the tasks a model supports (``{"tasks": [...]}``).
    """

    kind: str
    name: str
    factory: Callable[..., Any] | str
    params: type[Params] | str = NoParams
    summary: str = ""
    example: dict[str, Any] = field(default_factory=dict)
    plugin: str = ""
    tags: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown component kind {self.kind!r}; expected one of {sorted(KINDS)}")

    @property
    def qualified_id(self) -> str:
        return f"{self.plugin}:{self.name}"

    def params_model(self) -> type[Params]:
        model = load_object(self.params)
        self.params = model
        return model

    def load_factory(self) -> Callable[..., Any]:
        fn = load_object(self.factory)
        self.factory = fn
        return fn

    def validate(self, values: dict[str, Any]) -> Params:
        """Validate recipe values (without ``name``) into the parameter model."""
        return self.params_model().model_validate(values)

    def build(self, params: Params | dict[str, Any] | None = None, context: dict | None = None) -> Any:
        """Construct the component from parameters (validated here if given as a dict)."""
        if not isinstance(params, Params):
            params = self.validate(params or {})
        return self.load_factory()(params, context or {})
