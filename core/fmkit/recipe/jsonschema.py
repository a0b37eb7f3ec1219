"""JSON Schema of recipes, with every installed component's parameters (for editor completion)."""
from __future__ import annotations

from typing import Any

from .schema import Recipe

SECTION_KINDS = {"task": "task", "model": "model", "loss": "loss", "optimizer": "optimizer", "scheduler": "scheduler"}


def _component_schema(registry, kind: str, extra: dict | None = None) -> dict[str, Any]:
    variants = []
    for comp in registry.components(kind):
        try:
            params = comp.params_model().model_json_schema()
        except Exception:  # a plugin whose parameter model cannot load: accept any parameters
            params = {"type": "object"}
        props = {"name": {"enum": sorted({comp.name, comp.qualified_id})}, **params.get("properties", {}),
                 **(extra or {})}
        variant = {"type": "object", "description": comp.summary, "properties": props, "required": ["name"],
                   "additionalProperties": False}
        if "$defs" in params:
            variant["$defs"] = params["$defs"]
        variants.append(variant)
    return {"anyOf": variants + [{"type": "string", "enum": sorted({c.name for c in registry.components(kind)})}]}


def recipe_json_schema(registry) -> dict[str, Any]:
    schema = Recipe.model_json_schema()
    props = schema["properties"]
    for section, kind in SECTION_KINDS.items():
        props[section] = _component_schema(registry, kind)
    data_extra = {k: v for k, v in schema["$defs"]["DataSection"]["properties"].items() if k != "name"}
    props["data"] = _component_schema(registry, "dataset", data_extra)
    props["data"]["anyOf"] = [v for v in props["data"]["anyOf"] if v.get("type") == "object"]
    schema["$defs"]["EvaluateSection"]["properties"]["metrics"] = {"type": "array", "items": _component_schema(registry, "metric")}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "fmkit recipe"
    return schema
