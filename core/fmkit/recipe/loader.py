"""Read YAML keeping each value's line, and apply ``--set a.b=value`` overrides.

Reading never trusts the file: a recipe that is not UTF-8 text, or a duplicate key (which YAML
would silently resolve to the last value), is reported with its line like any other problem.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from ..errors import RecipeError, RecipeIssue

Lines = dict[tuple, int]


def _walk(node: yaml.Node, path: tuple, lines: Lines, dupes: list[RecipeIssue], source: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            k = key.value
            line = key.start_mark.line + 1
            if k in first:
                where = ".".join(str(p) for p in path + (k,))
                what = "section" if not path else "key"
                dupes.append(RecipeIssue(where, f"duplicate {what} {k!r} (first at line {first[k]}); YAML would keep "
                                         "only the last one silently: merge them into one", line, source))
            else:
                first[k] = line
            lines[path + (k,)] = line
            _walk(value, path + (k,), lines, dupes, source)
            lines[path + (k,)] = first[k]
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), lines, dupes, source)


#: the most values a recipe may hold once its YAML aliases are expanded, and the deepest nesting:
#: a real recipe has a few hundred values, six levels deep; nine nested aliases ("billion laughs")
#: expand a few lines into 387 million values
MAX_VALUES = 100_000
MAX_DEPTH = 64


def _check_size(node: yaml.Node, source: str) -> None:
    """Refuse a recipe whose values, counted through its aliases, pass :data:`MAX_VALUES`, or that
    nests past :data:`MAX_DEPTH`, before anything walks it (the count stops at the limit)."""
    count, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        count += 1
        line = current.start_mark.line + 1
        if count > MAX_VALUES:
            raise RecipeError([RecipeIssue("", f"the recipe holds more than {MAX_VALUES:,} values once its YAML "
                                           "aliases (*name) are expanded; write the values out, or use fewer "
                                           "nested aliases", line, source)], source)
        if depth > MAX_DEPTH:
            raise RecipeError([RecipeIssue("", f"the recipe nests more than {MAX_DEPTH} levels deep; a recipe's "
                                           "sections are a few levels deep", line, source)], source)
        if isinstance(current, yaml.MappingNode):
            stack.extend((part, depth + 1) for pair in current.value for part in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in current.value)


def decode_recipe(raw: bytes, source: str) -> str:
    """The text of a recipe file: UTF-8 (a BOM is allowed); anything else is a :class:`RecipeError`."""
    if b"\0" in raw:
        line = raw[: raw.index(b"\0")].count(b"\n") + 1
        raise RecipeError([RecipeIssue("", "this is a binary file, not a YAML recipe (it holds NUL bytes)",
                                       line, source)], source)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise RecipeError([RecipeIssue("", f"the recipe is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
                                       f"{e.start}); save it as UTF-8", line, source)], source) from None


def read_recipe_file(path: Path) -> tuple[dict, Lines, list[RecipeIssue]]:
    """Read a recipe file: data, lines, and problems that do not stop validation (duplicates)."""
    source = str(path)
    if path.exists() and not path.is_file():
        raise RecipeError([RecipeIssue("", f"{path} is not a regular file (a folder, FIFO or device); "
                                       "give the recipe's YAML file", None, source)], source)
    if not path.is_file():
        raise RecipeError([RecipeIssue("", f"recipe file not found: {path}", None, source)], source)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RecipeError([RecipeIssue("", f"cannot read the recipe: {os.strerror(e.errno) if e.errno else e}",
                                       None, source)], source) from None
    return load_yaml_with_lines(decode_recipe(raw, source), source, collect=True)


def load_yaml_with_lines(text: str, source: str = "<recipe>", collect: bool = False):
    """Parse YAML; return the data and a map from key paths to 1-based line numbers.

    With ``collect``, also return the list of duplicate-key problems (validation reports them with
    the others); without, a duplicate key raises :class:`RecipeError` at once.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _check_size(node, source)
        data = yaml.safe_load(text)
    except RecursionError:  # nesting deeper than the parser's recursion (thousands of "[")
        raise RecipeError([RecipeIssue("", f"the recipe nests more than {MAX_DEPTH} levels deep; a recipe's "
                                       "sections are a few levels deep", None, source)], source) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark else None
        if isinstance(e, yaml.reader.ReaderError):  # a control character: binary or mis-encoded
            line = text[: e.position].count("\n") + 1
            char = chr(e.character) if isinstance(e.character, int) else e.character
            problem = (f"a character YAML does not allow (U+{ord(char):04X} at offset {e.position}): "
                       "is this a text file?")
        else:
            problem = getattr(e, "problem", None) or str(e)
        raise RecipeError([RecipeIssue("", f"YAML syntax error: {problem}", line, source)], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError([RecipeIssue("", "a recipe must be a mapping of sections (task:, model:, data: ...)", 1, source)], source)
    lines: Lines = {}
    dupes: list[RecipeIssue] = []
    if node is not None:
        _walk(node, (), lines, dupes, source)
    if collect:
        return data, lines, dupes
    if dupes:
        raise RecipeError(dupes, source)
    return data, lines


def _coerce(value: str) -> Any:
    """Turn a ``--set`` value into YAML's type: numbers, booleans, null, lists, mappings, or a string.

    A value YAML reads as a string is taken as typed, unless it is quoted: YAML would cut
    ``exp #3`` at its comment and read ``|`` or ``>`` as an empty block of text. So are a date
    (``2024-01-01``) and a time-like ``1:30``, which YAML 1.1 reads as a date and as 90."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    text = value.strip()
    quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""
    if isinstance(parsed, str) and not quoted and parsed != text:
        return text
    import datetime

    if isinstance(parsed, (datetime.date, datetime.datetime)) or (
            isinstance(parsed, (int, float)) and not isinstance(parsed, bool) and ":" in text):
        return text  # YAML 1.1 reads 2024-01-01 as a date and 1:30 as 90 (base 60): no field takes those
    return parsed


def _index(node: list, part: str, where: str) -> int:
    """A list index from a ``--set`` path part; it must name an item that exists."""
    try:
        i = int(part)
    except ValueError:
        raise TypeError(f"{where} is a list: use an item number (0..{len(node) - 1}), not {part!r}") from None
    if not 0 <= i < len(node):
        raise IndexError(f"{where} has {len(node)} item(s), so item {i} does not exist; "
                         f"to replace the whole list use --set {where}=[...]")
    return i


def apply_overrides(data: dict, overrides: list[str] | None, applied: dict[str, str] | None = None) -> dict:
    """Apply ``a.b.c=value`` overrides in place (list items by index: ``data.clean.0.name=x``).

    ``applied``, when given, receives each applied override's dotted path (list items as ``[i]``,
    the form recipe issues use) mapped to the ``--set`` argument, so problems with a value that came
    from the command line are reported against that argument rather than a line of the file.

    An index must name an existing item of an existing list: ``--set`` never invents a list item
    (or a mapping keyed ``"0"``) that validation would then misread.
    """
    issues = []
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            issues.append(RecipeIssue(key, f"--set {item!r} must look like section.field=value", None, "--set"))
            continue
        parts = key.strip().split(".")
        node: Any = data
        before = copy.deepcopy(data)  # a failed override leaves nothing half-applied
        try:
            for n, p in enumerate(parts):
                where = ".".join(parts[:n]) or "<root>"
                last = n == len(parts) - 1
                if isinstance(node, list):
                    i = _index(node, p, where)
                    if last:
                        node[i] = _coerce(raw)
                    else:
                        node = node[i]
                elif isinstance(node, dict):
                    if p.lstrip("-").isdigit() and p not in node and int(p) not in node:
                        raise IndexError(f"{where} is not a list here, so it has no item {p}; "
                                         f"set the whole list with --set {where}=[...]")
                    if last:
                        node[p] = _coerce(raw)
                    else:
                        if node.get(p) is None:
                            node[p] = {}
                        node = node[p]
                else:
                    raise TypeError(f"{where} is a {type(node).__name__}, not a section")
            if applied is not None:
                applied["".join(f"[{p}]" if p.lstrip("-").isdigit() else (f".{p}" if n else p)
                                for n, p in enumerate(parts))] = item
        except (IndexError, TypeError) as e:
            data.clear()
            data.update(before)
            issues.append(RecipeIssue(key, f"cannot apply --set {item!r}: {e}", None, "--set"))
    if issues:
        raise RecipeError(issues, "--set")
    return data
