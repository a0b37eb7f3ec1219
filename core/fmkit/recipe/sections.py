"""Top-level recipe sections declared by plugins (``tune:``, ``mlflow:`` ...), since hook API 1.4.

A plugin returns :class:`RecipeSection` objects from ``fmkit_register_recipe_sections``. Each names
a top-level key and the pydantic model that validates it; the recipe validator checks the section
with the rest of the recipe (every problem at once, with its path and line), ``fmkit schema``
includes its JSON Schema and ``fmkit new recipe`` writes it. The validated value is kept on the
recipe: ``recipe.section("tune")`` (also ``run.recipe.section(...)`` in lifecycle hooks).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from pydantic import BaseModel

if TYPE_CHECKING:  # pragma: no cover
    from ..plugins import PluginManager

#: the core's own top-level keys: a plugin section may not take one
CORE_SECTIONS = ("task", "model", "data", "loss", "optimizer", "scheduler", "train", "evaluate", "export", "serve",
                 "tracking", "plugins", "required_plugins")


@dataclass
class RecipeSection:
    """A top-level recipe section a plugin declares (returned by ``fmkit_register_recipe_sections``).

    Attributes:
        name: the top-level key (``"tune"``); lower case letters, digits and ``_``; not one of the
            core's sections, and unique among installed plugins.
        model: the pydantic model that validates the section (use ``extra="forbid"`` so a
            misspelt key is reported with a did-you-mean). An empty section (``tune:`` with
            nothing under it) is validated as ``{}``. Document each field as for
            :class:`fmkit.Params`: a ``#:`` comment line right above it (or ``Field(description=)``)
            becomes its description (in nested models too), shown by ``fmkit new recipe``,
            ``fmkit components show NAME`` and ``fmkit schema``.
        summary: one line, shown by ``fmkit new recipe`` and as the schema's description.
        example: the values ``fmkit new recipe`` fills in (other fields are written with their
            defaults, commented out once more). The starter writes the whole section commented
            out, under a header naming the plugin: a starter never turns on another plugin's
            workflow by itself.
        check: optional cross-check against the rest of the recipe, called only when everything
            else is valid, as ``check(value, recipe)`` with the validated section and the resolved
            :class:`fmkit.recipe.Recipe` (without plugin sections); it returns ``(path, message)``
            pairs, ``path`` a tuple of keys inside the section (``("space", "optimizer.lr")``),
            reported like every other problem.
        plugin: the plugin that declared it (filled in by fmkit).
    """

    name: str
    model: type[BaseModel]
    summary: str = ""
    example: dict[str, Any] = field(default_factory=dict)
    check: Callable[[Any, Any], list[tuple[tuple, str]]] | None = None
    plugin: str = ""


def collect_sections(manager: PluginManager) -> dict[str, RecipeSection]:
    """Every loaded plugin's sections by name. A plugin whose hook raises, returns something else,
    reuses a core section's name or one another plugin declared is marked failed (its components
    are left out too, as for a failing registration hook)."""
    import re

    from ..errors import PluginLoadError

    out: dict[str, RecipeSection] = {}
    for plugin, fn in manager.impls("fmkit_register_recipe_sections"):
        try:
            found = list(fn() or [])
            mine = {}
            for s in found:
                if not isinstance(s, RecipeSection):
                    raise TypeError(f"fmkit_register_recipe_sections must return RecipeSection objects, got {s!r}")
                if not (isinstance(s.model, type) and issubclass(s.model, BaseModel)):
                    raise TypeError(f"recipe section {s.name!r}: model must be a pydantic model class")
                if not re.fullmatch(r"[a-z][a-z0-9_]*", s.name or ""):
                    raise ValueError(f"recipe section name {s.name!r} must be lower case letters, digits and _")
                if s.name in CORE_SECTIONS:
                    raise PluginLoadError(f"recipe section {s.name!r} is one of the core's own sections")
                if s.name in out or s.name in mine:
                    other = out[s.name].plugin if s.name in out else plugin
                    raise PluginLoadError(f"recipe section {s.name!r} is already declared by plugin {other!r}")
                s.plugin = plugin
                _document(s.model)
                mine[s.name] = s
        except Exception as e:
            manager._fail(manager.infos[plugin], e)
            manager._registry = None  # rebuilt without the failed plugin's components
            continue
        out.update(mine)
    return out


def _document(model: type[BaseModel], seen: set | None = None) -> bool:
    """Give the fields of a section's model, and of the models nested in it, their ``#:`` comments
    as descriptions (:func:`fmkit.fielddocs.fill_descriptions`, as :class:`fmkit.Params` does);
    True when any changed. Nested models first, so the rebuilt outer schema holds their texts."""
    import typing

    from ..fielddocs import fill_descriptions

    seen = set() if seen is None else seen
    if model in seen:
        return False
    seen.add(model)
    nested = False

    def walk(annotation) -> None:
        nonlocal nested
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested = _document(annotation, seen) or nested
        for arg in typing.get_args(annotation):
            walk(arg)

    for f in model.model_fields.values():
        walk(f.annotation)
    changed = fill_descriptions(model)
    if changed or nested:
        model.model_rebuild(force=True)
    return changed or nested


__all__ = ["CORE_SECTIONS", "RecipeSection", "collect_sections"]
