"""JSON Schema of recipes, with every installed component's parameters (for editor completion).

Each component's parameter model brings its own ``$defs`` (nested models: a tokenizer, LoRA, an
audio front end). JSON Schema resolves ``#/$defs/X`` against the whole document, so those
definitions are moved to the root under a name unique to the component
(``<kind>.<plugin>.<name>.X``) and every ``$ref`` of that component is rewritten to it.
"""
from __future__ import annotations

import re
from typing import Any

from .schema import Recipe

SECTION_KINDS = {"task": "task", "model": "model", "loss": "loss", "optimizer": "optimizer", "scheduler": "scheduler"}
_REF = re.compile(r"^#/\$defs/(.+)$")


def _rewrite_refs(node: Any, rename: dict[str, str]) -> Any:
    """A copy of ``node`` whose ``#/$defs/X`` references point at ``#/$defs/rename[X]``."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            m = _REF.match(v) if k == "$ref" and isinstance(v, str) else None
            out[k] = f"#/$defs/{rename.get(m.group(1), m.group(1))}" if m else _rewrite_refs(v, rename)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, rename) for v in node]
    return node


def _params_schema(comp, root_defs: dict[str, Any]) -> dict[str, Any]:
    """The component's parameter schema, its definitions hoisted into ``root_defs``."""
    try:
        params = comp.params_model().model_json_schema()
    except Exception:  # a plugin whose parameter model cannot load: accept any parameters
        return {"type": "object"}
    defs = params.pop("$defs", {})
    prefix = f"{comp.kind}.{comp.plugin}.{comp.name}."
    rename = {name: prefix + name for name in defs}
    for name, definition in defs.items():
        root_defs[rename[name]] = _rewrite_refs(definition, rename)
    return _rewrite_refs(params, rename)


def _component_schema(registry, kind: str, root_defs: dict[str, Any], extra: dict | None = None) -> dict[str, Any]:
    variants = []
    for comp in registry.components(kind):
        params = _params_schema(comp, root_defs)
        props = {"name": {"enum": sorted({comp.name, comp.qualified_id})}, **params.get("properties", {}),
                 **(extra or {})}
        variants.append({"type": "object", "description": comp.summary, "properties": props, "required": ["name"],
                         "additionalProperties": False})
    return {"anyOf": variants + [{"type": "string", "enum": sorted({c.name for c in registry.components(kind)})}]}


def _section_schema(section, root_defs: dict[str, Any]) -> dict[str, Any]:
    """A plugin section's schema (its model's), definitions hoisted as for components."""
    params = section.model.model_json_schema()
    defs = params.pop("$defs", {})
    rename = {name: f"section.{section.plugin}.{section.name}.{name}" for name in defs}
    for name, definition in defs.items():
        root_defs[rename[name]] = _rewrite_refs(definition, rename)
    params = _rewrite_refs(params, rename)
    params["description"] = f"{section.summary} (plugin {section.plugin})".strip()
    return {"anyOf": [params, {"type": "null"}]}


def recipe_json_schema(registry, sections: dict | None = None) -> dict[str, Any]:
    """The recipe schema (draft 2020-12) with every registered component's parameters and every
    plugin section (``sections``: :attr:`fmkit.plugins.PluginManager.recipe_sections`)."""
    schema = Recipe.model_json_schema()
    defs, props = schema["$defs"], schema["properties"]
    for section, kind in SECTION_KINDS.items():
        props[section] = _component_schema(registry, kind, defs)
    data_extra = {k: v for k, v in defs["DataSection"]["properties"].items() if k != "name"}
    transforms = _component_schema(registry, "transform", defs)  # a transform's name, or name and parameters
    for stage in ("clean", "augment"):
        data_extra[stage] = {**data_extra[stage], "items": transforms}
    data = _component_schema(registry, "dataset", defs, data_extra)
    # without ``name:`` the task's default dataset reads the section: its parameters are not known here
    unnamed = {"type": "object", "not": {"required": ["name"]}, "properties": data_extra, "additionalProperties": True}
    props["data"] = {"anyOf": [v for v in data["anyOf"] if v.get("type") == "object"] + [unnamed]}
    defs["EvaluateSection"]["properties"]["metrics"] = {
        "anyOf": [{"type": "array", "items": _component_schema(registry, "metric", defs)}, {"type": "null"}]}
    for name, section in sorted((sections or {}).items()):
        props[name] = _section_schema(section, defs)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "fmkit recipe"
    return schema
