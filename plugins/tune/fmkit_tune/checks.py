"""What can be said about a ``tune:`` section before any trial runs: the objective is a metric the
evaluation computes, the sampler fits the space, and every end of every range (every choice) gives
a valid recipe. ``fmkit validate`` reports these with the rest of the recipe."""
from __future__ import annotations

from typing import Any

import yaml

import fmkit
from fmkit.errors import RecipeError

from .settings import TuneSettings


def override(path: str, value: Any) -> str:
    """A ``--set`` item for one value, written so YAML reads it back as the same value (``1.0e-05``
    stays a float, ``"mean"`` a string)."""
    text = yaml.safe_dump([value], default_flow_style=True, width=10**6).strip()
    return f"{path}={text[1:-1]}"


def task_monitor(recipe) -> tuple[str | None, str | None]:
    """The task's own monitored metric and its mode, when its class says."""
    try:
        cls = fmkit.get_registry().get("task", recipe.task.name).load_factory()
    except Exception:
        return None, None
    return getattr(cls, "monitor", None), getattr(cls, "monitor_mode", None)


def objective(settings: TuneSettings, recipe) -> tuple[str | None, str | None]:
    """``(metric, direction)``: the section's, else what the recipe monitors and how it improves
    (direction None when nothing says)."""
    ev, es = recipe.evaluate, recipe.train.early_stopping
    t_metric, t_mode = task_monitor(recipe)
    metric = settings.metric or ev.monitor or (es.monitor if es else None) or t_metric
    if settings.direction:
        return metric, settings.direction
    mode = None
    if metric == ev.monitor and ev.monitor_mode:
        mode = ev.monitor_mode
    elif es and metric == es.monitor and es.mode:
        mode = es.mode
    elif metric == t_metric:
        mode = t_mode
    elif metric == "loss":
        mode = "min"
    return metric, {"max": "maximize", "min": "minimize"}.get(mode)


def _problems(error: RecipeError) -> str:
    return "; ".join(f"{i.path}: {i.message}" if i.path else i.message for i in error.issues)


def check_section(settings: TuneSettings, recipe) -> list[tuple[tuple, str]]:
    """Problems of a ``tune:`` section, as ``(path inside the section, message)``."""
    issues: list[tuple[tuple, str]] = []
    base = recipe.to_dict(sections=False)
    if not settings.space:
        issues.append((("space",), "the search space is empty: name at least one recipe path, e.g. "
                       "optimizer.lr: {float: [1e-5, 1e-3], log: true}"))
    metric, direction = objective(settings, recipe)
    if metric is None:
        issues.append((("metric",), "no metric to optimise: set tune.metric (or evaluate.monitor)"))
    else:
        try:
            fmkit.load_recipe(base, [override("evaluate.monitor", metric)])
        except RecipeError as e:
            issues.append((("metric",), f"tune.metric {metric!r}: {_problems(e)}"))
        if direction is None:
            issues.append((("direction",), f"fmkit cannot tell whether {metric!r} improves up or down: set "
                           "tune.direction to maximize or minimize"))
    if settings.sampler == "grid":
        for key, p in settings.space.items():
            if p.grid() is None:
                issues.append((("space", key), "a grid search needs values to try: a float range has none; give "
                               "choice: [...], an int range, or a float range with step:"))
    if settings.sampler == "cmaes" and settings.space and all(p.kind == "choice" for p in settings.space.values()):
        issues.append((("sampler",), "CMA-ES searches float and int ranges; this space has only choices: use "
                       "sampler: tpe, random or grid"))
    for key, p in settings.space.items():
        if key.split(".")[0] in ("tracking", "plugins", "required_plugins", "tune", "export", "serve"):
            issues.append((("space", key), f"{key} does not change training; search model, data, optimizer, "
                           "scheduler, loss or train settings"))
            continue
        for value in p.corners():
            try:
                fmkit.load_recipe(base, [override(key, value)])
            except RecipeError as e:
                issues.append((("space", key), f"the value {value!r} gives an invalid recipe: {_problems(e)}"))
                break
    if settings.baseline:
        for key, p in settings.space.items():
            value = recipe_value(base, key)
            if not contains(p, value):
                issues.append((("baseline",), f"the recipe's own {key} ({value!r}) is outside the space "
                               f"{p.model_dump(exclude_none=True, exclude_defaults=True)}, so it cannot be the "
                               "baseline trial"))
    return issues


def recipe_value(data: dict, path: str) -> Any:
    """The value at a dotted recipe path (list items by index), or None when it is not there."""
    node: Any = data
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def contains(p, value: Any) -> bool:
    """Whether a sampler could give ``value`` for this dimension."""
    if p.choice is not None:
        return value in p.choice
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    lo, hi = p.float_ if p.float_ is not None else p.int_
    return lo <= value <= hi and (p.int_ is None or value == int(value))
