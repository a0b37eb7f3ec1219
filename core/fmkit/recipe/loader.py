"""Read YAML keeping each value's line, and apply ``--set a.b=value`` overrides."""
from __future__ import annotations

from typing import Any

import yaml

from ..errors import RecipeError, RecipeIssue

Lines = dict[tuple, int]


def _walk(node: yaml.Node, path: tuple, lines: Lines) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            lines[path + (k,)] = key.start_mark.line + 1
            _walk(value, path + (k,), lines)
            lines[path + (k,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), lines)


def load_yaml_with_lines(text: str, source: str = "<recipe>") -> tuple[dict, Lines]:
    """Parse YAML; return the data and a map from key paths to 1-based line numbers."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(e, "problem", None) or str(e)
        raise RecipeError([RecipeIssue("", f"YAML syntax error: {problem}", line, source)], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError([RecipeIssue("", "a recipe must be a mapping of sections (task:, model:, data: ...)", 1, source)], source)
    lines: Lines = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def _coerce(value: str) -> Any:
    """Turn a ``--set`` value into YAML's type: numbers, booleans, null, lists, mappings, or a string."""
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Apply ``a.b.c=value`` overrides in place (list items by index: ``data.clean.0.name=x``)."""
    issues = []
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            issues.append(RecipeIssue(key, f"--set {item!r} must look like section.field=value", None, "--set"))
            continue
        parts = key.strip().split(".")
        node: Any = data
        try:
            for p in parts[:-1]:
                if isinstance(node, list):
                    node = node[int(p)]
                else:
                    if node.get(p) is None:
                        node[p] = {}
                    node = node[p]
            last = parts[-1]
            if isinstance(node, list):
                node[int(last)] = _coerce(raw)
            elif isinstance(node, dict):
                node[last] = _coerce(raw)
            else:
                raise TypeError(f"{'.'.join(parts[:-1])} is a {type(node).__name__}, not a section")
        except (ValueError, IndexError, TypeError, AttributeError) as e:
            issues.append(RecipeIssue(key, f"cannot apply --set {item!r}: {e}", None, "--set"))
    if issues:
        raise RecipeError(issues, "--set")
    return data
