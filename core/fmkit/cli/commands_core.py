"""Commands that need no torch: plugins, components, validate, schema, new."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..plugins import get_plugin_manager


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*[str(c) for c in r]) for r in rows]
    return "\n".join(x.rstrip() for x in lines)


def plugins_list(args) -> int:
    pm = get_plugin_manager()
    pm.registry  # noqa: B018 - registration errors are load errors too
    infos = list(pm.infos.values())
    sections: dict[str, list[str]] = {}  # the top-level recipe sections each plugin declares
    for s in pm.recipe_sections.values():
        sections.setdefault(s.plugin, []).append(s.name)
    import fmkit

    workflows: dict[str, list[str]] = {}  # the functions each plugin adds to the fmkit namespace
    for name, (plugin, _) in pm.workflows(set(fmkit.__all__)).items():
        workflows.setdefault(plugin, []).append(f"fmkit.{name}")
    if args.json:
        print(json.dumps([{**i.to_json(), "recipe_sections": sections.get(i.name, []),
                           "workflows": workflows.get(i.name, [])} for i in infos], indent=2))
        return 0
    rows = [[i.name, i.status, i.distribution or "-", i.version or "-", i.source, len(i.hooks),
             ", ".join(sections.get(i.name, [])) or "-"] for i in infos]
    print(_table(rows, ["plugin", "status", "distribution", "version", "source", "hooks", "recipe sections"]))
    if sections:
        print("\na recipe section's fields: fmkit components show SECTION")
    for i in infos:
        if i.error:
            print(f"\n{i.name}: {i.status}: {i.error}\n  location: {i.location}", file=sys.stderr)
    return 0


def components_list(args) -> int:
    from ..components import KINDS

    if args.kind and args.kind not in KINDS:
        import difflib

        close = difflib.get_close_matches(args.kind, list(KINDS), n=1)
        print(f"error: unknown kind {args.kind!r}" + (f"; did you mean {close[0]!r}?" if close else "")
              + f" (kinds: {', '.join(KINDS)})", file=sys.stderr)
        return 2
    comps = get_plugin_manager().registry.components(args.kind)
    if args.json:
        print(json.dumps([{"kind": c.kind, "id": c.name, "qualified_id": c.qualified_id, "plugin": c.plugin,
                           "summary": c.summary} for c in comps], indent=2))
        return 0
    print(_table([[c.kind, c.name, c.plugin, c.summary] for c in comps], ["kind", "id", "plugin", "summary"]))
    return 0


def components_show(args) -> int:
    from ..errors import ComponentNotFoundError

    manager = get_plugin_manager()
    reg = manager.registry
    found = [reg.get(args.kind, args.id)] if args.kind else reg.find(args.id)
    if not found and args.id in manager.recipe_sections:  # a plugin's top-level recipe section (tune:)
        return _show_section(manager.recipe_sections[args.id], args.json)
    if not found:
        import difflib

        names = sorted({c.name for c in reg} | set(manager.recipe_sections))
        raise ComponentNotFoundError("component", args.id, difflib.get_close_matches(args.id, names, n=3))
    out = []
    for c in found:
        model = c.params_model()
        schema = model.model_json_schema()
        out.append({"kind": c.kind, "id": c.name, "qualified_id": c.qualified_id, "plugin": c.plugin,
                    "summary": c.summary, "parameters": _parameters(model), "example": {"name": c.name, **c.example},
                    "schema": schema})
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    import yaml

    for c in out:
        print(f"{c['kind']} {c['qualified_id']}\n  {c['summary']}\n\nparameters:")
        for p in c["parameters"] or [{"name": "(none)", "type": "", "default": "", "required": False}]:
            extra = "required" if p["required"] else f"default: {json.dumps(p['default'], default=str)}"
            print(f"  {p['name']}  ({p['type']}; {extra})" + (f"\n      {p['description']}" if p.get("description") else ""))
        section = {"data": c["example"]} if c["kind"] == "dataset" else {c["kind"]: c["example"]}
        print("\nexample:\n" + "\n".join("  " + x for x in yaml.safe_dump(section, sort_keys=False).splitlines()) + "\n")
    return 0


def _show_section(section, as_json: bool) -> int:
    """``components show NAME`` for a plugin's recipe section: its fields with their descriptions."""
    import yaml

    fields = _parameters(section.model)
    if as_json:
        print(json.dumps([{"kind": "recipe-section", "id": section.name, "plugin": section.plugin,
                           "summary": section.summary, "parameters": fields, "example": {section.name: section.example},
                           "schema": section.model.model_json_schema()}], indent=2, default=str))
        return 0
    print(f"recipe section {section.name} (a top-level key of the recipe; plugin {section.plugin})\n  {section.summary}\n\nfields:")
    for p in fields or [{"name": "(none)", "type": "", "default": "", "required": False}]:
        extra = "required" if p["required"] else f"default: {json.dumps(p['default'], default=str)}"
        print(f"  {p['name']}  ({p['type']}; {extra})" + (f"\n      {p['description']}" if p.get("description") else ""))
    example = yaml.safe_dump({section.name: section.example or None}, sort_keys=False).splitlines()
    print("\nexample:\n" + "\n".join("  " + x for x in example) + "\n")
    return 0


def _parameters(model, prefix: str = "") -> list[dict]:
    """Each field of a parameter model as ``components show`` lists it, followed by the fields of
    a model it holds (``frontend.n_mels``); defaults as a recipe writes them."""
    import types
    import typing

    from pydantic import BaseModel

    from ..fielddocs import describe_type

    out = []
    for fname, field in model.model_fields.items():
        name = prefix + (field.alias or fname)
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json", by_alias=True)
        out.append({"name": name, "type": describe_type(field.annotation), "default": default,
                    "required": field.is_required(), "description": field.description})
        optional = typing.get_origin(field.annotation) in (typing.Union, types.UnionType)  # a model or null
        inner = [a for a in (field.annotation, *(typing.get_args(field.annotation) if optional else ()))
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        if inner and inner[0] is not model:
            out += _parameters(inner[0], name + ".")
    return out


def _listed_plugins(recipe_path: str) -> list:
    """The recipe file's ``plugins:`` list, read without validating anything ([] when unreadable)."""
    try:
        import yaml

        if not Path(recipe_path).is_file():  # a FIFO would block the read forever
            return []
        data = yaml.safe_load(Path(recipe_path).read_text(encoding="utf-8"))
        listed = data.get("plugins") if isinstance(data, dict) else None
        return listed if isinstance(listed, list) else []
    except Exception:
        return []


def _check_data(recipe, source: str) -> None:
    """Raise :class:`RecipeError` for data files that do not exist or lack the columns the recipe
    names (the dataset's :meth:`fmkit.Dataset.check`: headers only, never whole data sets), and
    for a ``distill.teacher`` that is not there (a missing path, a folder neither a run nor an export)."""
    from ..datasets import missing_split_files
    from ..engine.builder import Builder
    from ..engine.data import special_data_paths
    from ..errors import FmkitError

    special = special_data_paths(recipe.data.dataset_params())  # FIFOs and devices: never opened
    try:
        builder = Builder(recipe)
        dataset = builder.dataset(builder.task())
        check = getattr(dataset, "check", None)
        problems = [] if special else check() if callable(check) else missing_split_files(recipe.data.dataset_params())
    except FmkitError as e:
        problems = [("", f"the data cannot be checked: {e}")]
    problems = [(("data", *field.split(".")) if field else ("data",), message) for field, message in problems]
    problems = [(tuple(where.split(".")), message) for where, message in special] + problems
    if recipe.prune is not None and recipe.prune.source:  # the run to prune: there, a run, the same model
        from ..engine.prune import _check_source

        try:
            _check_source(recipe, None)
        except FmkitError as e:
            problems.append((("prune", "source"), str(e).removeprefix("prune.source: ")))
    if recipe.distill is not None:  # the teacher is read like the data: it must be there
        from ..utils.paths import teacher_problem

        wrong = teacher_problem(recipe.distill.teacher)
        if wrong:
            problems.append((("distill", "teacher"), wrong))
    if problems:
        raise _located(problems, source, " (fmkit validate --skip-data checks the recipe alone)")


def _located(problems: list[tuple[tuple, str]], source: str, note: str):
    """A :class:`RecipeError` of ``(field path, message)`` problems, each at the line of its field (or
    of the nearest section above it) in the recipe file ``source``, ``note`` after each message."""
    from ..errors import FmkitError, RecipeError, RecipeIssue
    from ..recipe.loader import read_recipe_file

    lines: dict = {}
    try:
        lines = read_recipe_file(Path(source))[1]
    except (OSError, FmkitError):
        pass
    issues = []
    for loc, message in problems:
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
        issues.append(RecipeIssue(".".join(loc), message + note, line, source))
    return RecipeError(issues, source)


def _read_data(recipe, source: str) -> dict:
    """``--read-data``: the whole data set read, cleaned and checked, and the task fitted, by the same
    function as training's first step (nothing is written); a problem becomes a ``data`` issue."""
    from ..errors import DataError
    from ..engine.training_data import check_scored_splits, read_training_data

    try:
        found = read_training_data(recipe)
        check_scored_splits(recipe, found.task, found.splits)
    except DataError as e:
        raise _located([(("data",), str(e))], source, " (read with --read-data, as training reads it)") from None
    return found.summary()


def _describe_data(summary: dict) -> str:
    """One line: examples per split, classes, and what cleaning dropped."""
    text = ", ".join(f"{name} {count:,} examples" for name, count in summary["examples"].items())
    if "classes" in summary:
        text += f"; {summary['classes']} classes"
    dropped = summary.get("dropped") or {}
    text += ("; dropped " + ", ".join(f"{k}: {v}" for k, v in dropped.items())) if dropped else "; nothing dropped"
    return text


def validate(args) -> int:
    """``fmkit validate``: the recipe's ``plugins:`` are imported only with ``--import-plugins``."""
    from ..errors import RecipeError
    from ..recipe import load_recipe

    import_plugins = getattr(args, "import_plugins", False)
    read_data = getattr(args, "read_data", False)
    if read_data and getattr(args, "skip_data", False):
        from ..errors import UsageError

        raise UsageError("--read-data reads the data that --skip-data skips: give one of them")
    found = None
    try:
        recipe = load_recipe(args.recipe, args.overrides, import_plugins=import_plugins)
        if not getattr(args, "skip_data", False):
            _check_data(recipe, args.recipe)
        if read_data:
            found = _read_data(recipe, args.recipe)
    except RecipeError as e:
        listed = [] if import_plugins else _listed_plugins(args.recipe)
        hint = (f"note: the recipe's plugins: {listed} were not imported (importing runs their code), so the "
                "components they register are unknown here; if you trust them, run again with --import-plugins"
                if listed else "")
        if args.json:
            print(json.dumps({"valid": False, "errors": e.to_json(), **({"note": hint} if hint else {})}, indent=2))
        else:
            print(f"error: {e}" + (f"\n{hint}" if hint else ""), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"valid": True, "errors": [], **({"data": found} if found is not None else {})}))
    else:
        print(f"{args.recipe}: valid" + (f"\ndata: {_describe_data(found)}" if found is not None else ""))
    listed = [] if import_plugins else _listed_plugins(args.recipe)
    if listed:
        print(f"note: the recipe's plugins: {listed} were not imported; --import-plugins checks that they load",
              file=sys.stderr)
    return 0


def schema(args) -> int:
    from ..recipe.jsonschema import recipe_json_schema

    manager = get_plugin_manager()
    text = json.dumps(recipe_json_schema(manager.registry, manager.recipe_sections), indent=2)
    if args.output:
        from ..utils.atomic import atomic_write_text

        atomic_write_text(args.output, text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def new_plugin(args) -> int:
    from ..scaffold import scaffold_plugin

    dest = scaffold_plugin(args.name, Path(args.output))
    print(f"created {dest}\nnext: pip install -e {dest} && fmkit plugins list")
    return 0


def new_recipe(args) -> int:
    from ..scaffold import starter_recipe

    if args.output and Path(args.output).is_file() and not getattr(args, "force", False):
        from ..errors import UsageError

        raise UsageError(f"{args.output} exists (an edited recipe, perhaps): give another -o, or --force to replace it")
    manager = get_plugin_manager()
    text = starter_recipe(args.task, manager.registry, manager.recipe_sections, data=getattr(args, "data", None))
    if args.output:
        from ..utils.atomic import atomic_write_text

        atomic_write_text(args.output, text)
        todo = "check the data section" if getattr(args, "data", None) else "complete the data paths"
        print(f"wrote {args.output}; {todo}, then: fmkit validate {args.output}")
    else:
        print(text, end="")
    return 0
