"""Full recipe validation: structure, every component's parameters, plugins, cross-field checks.

Every problem is collected (not just the first), each with its dotted path and its line in the
file, and unknown names get "did you mean" suggestions. Validation writes nothing.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from ..errors import AmbiguousComponentError, ComponentNotFoundError, RecipeError, RecipeIssue
from .loader import Lines, apply_overrides, read_recipe_file
from .schema import ComponentRef, DataSection, Recipe, boolean_for_number

if TYPE_CHECKING:  # pragma: no cover
    from ..plugins import PluginManager


def _fmt_path(loc: tuple) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _line(lines: Lines, loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


def _model_fields(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) pydantic model at ``loc``, for key suggestions."""
    for p in loc:
        if isinstance(p, int):
            continue
        field = model.model_fields.get(p)
        if field is None:
            break
        ann = field.annotation
        for cand in getattr(ann, "__args__", ()) + (ann,):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                model = cand
                break
        else:
            break
    return list(model.model_fields)


def _pydantic_issues(err: ValidationError, prefix: tuple, lines: Lines, source: str,
                     model: type[BaseModel], top_level: list[str] | None = None) -> list[RecipeIssue]:
    """``top_level``: for the whole recipe, the plugin sections also allowed at the top (suggested
    for a misspelt section)."""
    issues = []
    for e in err.errors():
        loc = prefix + tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1])
            root = top_level is not None and len(e["loc"]) == 1
            names = _model_fields(model, tuple(e["loc"][:-1])) + (list(top_level or []) if root else [])
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
            msg = f"unknown key {key!r}" + (f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "")
            if root:  # a misspelt section, or the section of a plugin that is not installed
                msg = (f"unknown section {key!r}" + (f"; did you mean {', '.join(repr(c) for c in close)}?" if close
                                                      else "") +
                       f"; no installed plugin declares it (see `fmkit plugins list`; sections: {', '.join(names)})")
        elif e["type"] == "missing":
            msg = "this field is required"
        elif "input" in e and not isinstance(e["input"], (dict, list)):
            msg += f" (got {e['input']!r})"
        issues.append(RecipeIssue(_fmt_path(loc), msg, _line(lines, loc), source))
    return issues


class _Checker:
    def __init__(self, manager: PluginManager, lines: Lines, source: str):
        self.manager, self.lines, self.source = manager, lines, source
        self.issues: list[RecipeIssue] = []

    def issue(self, loc: tuple, message: str) -> None:
        self.issues.append(RecipeIssue(_fmt_path(loc), message, _line(self.lines, loc), self.source))

    def component(self, kind: str, ref: ComponentRef | dict | None, loc: tuple, params: dict | None = None) -> dict | None:
        """Validate one component section; return ``{name, **normalised params}`` or None."""
        if ref is None:
            return None
        name = ref.name if isinstance(ref, ComponentRef) else ref["name"]
        if params is None:
            params = ref.params() if isinstance(ref, ComponentRef) else {k: v for k, v in ref.items() if k != "name"}
        try:
            comp = self.manager.registry.get(kind, name)
        except (ComponentNotFoundError, AmbiguousComponentError) as e:
            self.issue(loc + ("name",), str(e))
            return None
        try:
            model = comp.params_model()
            booleans = {k: boolean_for_number(model.model_fields[k].annotation, v) for k, v in params.items()
                        if k in model.model_fields}  # pydantic would read true as 1 where a number goes
            for k, problem in booleans.items():
                if problem:
                    self.issue(loc + (k,), problem)
            if any(booleans.values()):
                return None
            validated = model.model_validate(params)
        except ValidationError as e:
            self.issues.extend(_pydantic_issues(e, loc, self.lines, self.source, model))
            return None
        except Exception as e:  # a plugin whose parameter model cannot load
            self.issue(loc, f"{kind} {name!r} from plugin {comp.plugin!r} cannot be loaded: {type(e).__name__}: {e}")
            return None
        return {"name": name, **validated.model_dump(mode="json")}


def check_required_plugins(manager: PluginManager, required: list[str], lines: Lines, source: str) -> list[RecipeIssue]:
    from packaging.requirements import InvalidRequirement, Requirement

    issues = []
    for i, spec in enumerate(required):
        loc = ("required_plugins", i)
        try:
            req = Requirement(spec)
        except InvalidRequirement as e:
            issues.append(RecipeIssue(_fmt_path(loc), f"invalid requirement {spec!r}: {e}", _line(lines, loc), source))
            continue
        found = [i for i in manager.infos.values()
                 if i.status == "loaded" and req.name.lower() in {i.name.lower(), (i.distribution or "").lower()}]
        if not found:
            issues.append(RecipeIssue(_fmt_path(loc), f"required plugin {req.name!r} is not installed or failed to load "
                                      f"(see `fmkit plugins list`); install it with `pip install {spec}`",
                                      _line(lines, loc), source))
            continue
        version = found[0].version
        if req.specifier and (version is None or not req.specifier.contains(version, prereleases=True)):
            issues.append(RecipeIssue(_fmt_path(loc), f"required plugin {spec!r} but version {version} is installed",
                                      _line(lines, loc), source))
    return issues


def _metric_keys(manager: PluginManager, built: list[dict | None]) -> set[str] | None:
    """Result keys the configured metrics produce (patterns from their ``keys`` tag), or None when
    a metric does not declare them (then nothing can be said)."""
    keys = {"loss"}
    for m in built:
        if m is None:
            return None
        try:
            declared = manager.registry.get("metric", m["name"]).tags.get("keys")
        except Exception:
            return None
        if declared is None:
            return None
        for k in declared:
            try:
                keys.add(k.format(**m))
            except (KeyError, IndexError, ValueError):
                return None
    return keys


def _task_monitor(manager: PluginManager, task: dict | None) -> str | None:
    """The task's own monitored metric (its class attribute ``monitor``), when it can be read."""
    if not task:
        return None
    try:
        factory = manager.registry.get("task", task["name"]).load_factory()
    except Exception:
        return None
    monitor = getattr(factory, "monitor", None)
    return monitor if isinstance(monitor, str) else None


def _check_monitors(c: _Checker, manager: PluginManager, data: dict, task: dict | None,
                    built: list[dict | None], metrics_loc: tuple) -> None:
    """evaluate.monitor / train.early_stopping.monitor must name a metric the evaluation computes."""
    import fnmatch

    keys = _metric_keys(manager, built)
    if keys is None:
        return
    ev = data.get("evaluate") if isinstance(data.get("evaluate"), dict) else {}
    tr = data.get("train") if isinstance(data.get("train"), dict) else {}
    es = tr.get("early_stopping") if isinstance(tr.get("early_stopping"), dict) else {}
    wanted = [(("evaluate", "monitor"), ev.get("monitor")), (("train", "early_stopping", "monitor"), es.get("monitor"))]
    if not any(isinstance(v, str) for _, v in wanted):
        wanted = [(metrics_loc, _task_monitor(manager, task))]
    for loc, name in wanted:
        if not isinstance(name, str) or any(fnmatch.fnmatchcase(name, k) for k in keys):
            continue
        close = difflib.get_close_matches(name, sorted(keys), n=3, cutoff=0.5)
        what = f"monitor {name!r}" if loc != metrics_loc else f"the task monitors {name!r}, which"
        c.issue(loc, f"{what} is not computed by any configured metric; computed: {sorted(keys)}"
                + (f"; did you mean {', '.join(repr(x) for x in close)}?" if close else
                   " (add its metric to evaluate.metrics or monitor one of these)"))


def import_recipe_plugins(manager: PluginManager, modules: list[str], lines: Lines, source: str) -> list[RecipeIssue]:
    """Import a recipe's ``plugins:`` modules (this runs their code); one issue per module that
    cannot be imported or registered, with its line."""
    issues = []
    manager.load_modules(modules)
    for i, name in enumerate(modules):
        info = manager.infos.get(name)
        if info is not None and info.status not in ("loaded", "disabled") and info.error:
            issues.append(RecipeIssue(_fmt_path(("plugins", i)), f"plugin module {name!r} cannot be loaded: "
                                      f"{info.error}; check the module path (it must be importable, e.g. on "
                                      "PYTHONPATH)", _line(lines, ("plugins", i)), source))
    return issues


def validate_recipe(data: dict, manager: PluginManager | None = None, lines: Lines | None = None,
                    source: str = "<recipe>", issues: list[RecipeIssue] | None = None,
                    import_plugins: bool = True) -> Recipe:
    """Validate recipe data against its structure and every component's parameters.

    Returns the resolved :class:`Recipe` (defaults from the task filled in, every component's
    parameters normalised). Raises :class:`RecipeError` listing every problem, including
    ``issues`` already found while reading the file (duplicate keys, ``--set`` mistakes). The
    recipe's ``plugins:`` modules are imported (running their code) only with ``import_plugins``;
    one that cannot be imported is an error.
    """
    from ..plugins import get_plugin_manager

    manager = manager or get_plugin_manager()
    lines = lines or {}
    plugin_list = data.get("plugins") or []
    plugin_issues: list[RecipeIssue] = []
    if import_plugins and isinstance(plugin_list, list) and all(isinstance(p, str) for p in plugin_list):
        plugin_issues = import_recipe_plugins(manager, plugin_list, lines, source)
    if isinstance(data.get("optimizer"), dict) and "name" not in data["optimizer"]:
        data["optimizer"] = {"name": "adamw", **data["optimizer"]}  # --set optimizer.lr=... alone
    c = _Checker(manager, lines, source)
    c.issues.extend(issues or [])
    c.issues.extend(plugin_issues)
    declared = manager.recipe_sections
    extra = {k: data[k] for k in declared if k in data}
    data = {k: v for k, v in data.items() if k not in declared}
    try:
        recipe = Recipe.model_validate(data)
        out = recipe.to_dict()
    except ValidationError as e:  # keep going: report component problems in the same pass
        c.issues.extend(_pydantic_issues(e, (), lines, source, Recipe, sorted(declared)))
        recipe, out = None, {}
    sections = _plugin_sections(c, declared, extra)

    def raw(section: str):
        v = data.get(section)
        if isinstance(v, str):
            return {"name": v}
        return v if isinstance(v, dict) and isinstance(v.get("name"), str) else None

    if isinstance(data.get("required_plugins"), list):
        c.issues.extend(check_required_plugins(manager, [str(x) for x in data["required_plugins"]], lines, source))
    task = c.component("task", raw("task"), ("task",))
    defaults: dict = {}
    if task:
        out["task"] = task
    task_name = (raw("task") or {}).get("name")
    try:  # the task's defaults even when its parameters are wrong: no follow-on errors
        defaults = manager.registry.get("task", task_name).tags.get("defaults", {}) if task_name else {}
    except (ComponentNotFoundError, AmbiguousComponentError):
        defaults = {}
    out["model"] = c.component("model", raw("model"), ("model",))
    if raw("loss") is None and defaults.get("loss"):
        out["loss"] = c.component("loss", _as_ref(defaults["loss"]), ("loss",))
    else:
        out["loss"] = c.component("loss", raw("loss"), ("loss",))
    out["optimizer"] = c.component("optimizer", raw("optimizer") or {"name": "adamw"}, ("optimizer",))
    out["scheduler"] = c.component("scheduler", raw("scheduler"), ("scheduler",))
    data_sec = data.get("data") if isinstance(data.get("data"), dict) else {}
    generic = set(DataSection.model_fields)
    data_name = data_sec.get("name") or defaults.get("dataset")
    if data_name is None:
        c.issue(("data", "name"), "no dataset named and the task has no default; set data.name "
                "(see `fmkit components list --kind dataset`)")
    else:
        ds = c.component("dataset", {"name": data_name}, ("data",),
                         {k: v for k, v in data_sec.items() if k not in generic})
        if ds and recipe is not None:
            out["data"] = {**out["data"], **ds}
    for which in ("clean", "augment"):
        items = data_sec.get(which) or []
        if isinstance(items, list):
            built = [c.component("transform", _as_ref(r), ("data", which, i)) for i, r in enumerate(items)
                     if isinstance(r, (str, dict))]
            if recipe is not None:
                out["data"][which] = built
    ev = data.get("evaluate") if isinstance(data.get("evaluate"), dict) else {}
    metrics = ev.get("metrics")
    if metrics is None:
        built = [c.component("metric", _as_ref(m), ("evaluate", "metrics")) for m in defaults.get("metrics", [])]
    elif isinstance(metrics, list):
        built = [c.component("metric", _as_ref(m), ("evaluate", "metrics", i)) for i, m in enumerate(metrics)
                 if isinstance(m, (str, dict))]
    else:
        built = [None]
    _check_monitors(c, manager, data, task, built, ("evaluate", "metrics"))
    formats = data.get("export", {}).get("formats") if isinstance(data.get("export"), dict) else None
    for i, fmt in enumerate(formats if isinstance(formats, list) else []):
        if isinstance(fmt, str):  # checked even when another section is broken: every problem at once
            c.component("exporter", {"name": fmt}, ("export", "formats", i))
    if recipe is not None:
        out["evaluate"]["metrics"] = built
    if recipe is None:
        raise RecipeError(c.issues, source)
    if recipe.train.precision == "fp16" and recipe.train.device == "cpu":
        c.issue(("train", "precision"), "fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    if c.issues:
        raise RecipeError(c.issues, source)
    resolved = Recipe.model_validate(out)
    for name, value in sections.items():
        check = declared[name].check
        try:
            found = list(check(value, resolved) or []) if check else []
        except Exception as e:  # a plugin's check that breaks is a problem with that plugin, said as one
            found = [((), f"plugin {declared[name].plugin!r} could not check this section: {type(e).__name__}: {e}")]
        for loc, message in found:
            c.issue((name, *loc), message)
    if c.issues:
        raise RecipeError(c.issues, source)
    resolved._sections.update(sections)
    return resolved


def _plugin_sections(c: _Checker, declared: dict, values: dict) -> dict[str, BaseModel]:
    """Each plugin section of the recipe validated by its plugin's model (problems go to ``c``)."""
    out = {}
    for name, value in values.items():
        model = declared[name].model
        try:
            out[name] = model.model_validate({} if value is None else value)
        except ValidationError as e:
            c.issues.extend(_pydantic_issues(e, (name,), c.lines, c.source, model))
    return out


def _as_ref(v: Any) -> dict:
    return {"name": v} if isinstance(v, str) else dict(v)


def load_recipe(source: str | os.PathLike | dict | Recipe, overrides: list[str] | None = None,
                manager: PluginManager | None = None, import_plugins: bool = True) -> Recipe:
    """Load a recipe from a YAML file, a dict or a :class:`Recipe`, apply overrides, validate
    (``import_plugins``: import the recipe's ``plugins:`` modules, see :func:`validate_recipe`)."""
    issues: list[RecipeIssue] = []
    if isinstance(source, Recipe):
        data, lines, name = source.to_dict(), {}, "<recipe>"
    elif isinstance(source, dict):
        import copy

        data, lines, name = copy.deepcopy(source), {}, "<recipe>"
    else:
        path = Path(source)
        data, lines, issues = read_recipe_file(path)
        name = str(path)
    applied: dict[str, str] = {}
    try:
        apply_overrides(data, overrides, applied)
    except RecipeError as e:  # reported together with the recipe's own problems
        issues = issues + e.issues
    try:
        return validate_recipe(data, manager, lines, name, issues, import_plugins=import_plugins)
    except RecipeError as e:
        raise RecipeError([_blame_set(i, applied) for i in e.issues], e.source) from None


def _blame_set(issue: RecipeIssue, applied: dict[str, str]) -> RecipeIssue:
    """An issue about a value that a ``--set`` argument put there points at that argument, not at a
    line of the file (where the old value, or nothing, stood)."""
    for path, item in applied.items():
        if issue.path == path or issue.path.startswith((path + ".", path + "[")):
            return RecipeIssue(issue.path, issue.message, None, f"--set {item}")
    return issue


__all__ = ["DataSection", "load_recipe", "validate_recipe"]
