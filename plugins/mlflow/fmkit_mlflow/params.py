"""What describes a run in MLflow: the flattened recipe as parameters, and the run's tags."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: MLflow's limits on a parameter's key and value
KEY_LIMIT, VALUE_LIMIT = 250, 6000


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """``{"optimizer": {"lr": 0.001}}`` -> ``{"optimizer.lr": "0.001"}``: nested mappings become
    dotted keys (the paths ``--set`` takes), lists and other values their JSON text, ``None``
    ``"null"``. Values too long for MLflow are cut and end in ``...``."""
    out: dict[str, str] = {}
    if isinstance(tree, dict) and (tree or not prefix):
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    text = tree if isinstance(tree, str) else json.dumps(tree, default=str)
    if len(text) > VALUE_LIMIT:
        text = text[:VALUE_LIMIT - 3] + "..."
    out[prefix[:KEY_LIMIT]] = text
    return out


def run_tags(run: Any, settings: Any, version: str) -> dict[str, str]:
    """fmkit's and the plugins' versions, the git commit, the task, the model and the run folder
    (``environment.json``, written by the engine before the first hook, supplies the versions)."""
    import fmkit

    recipe = run.recipe
    tags = {"fmkit.version": fmkit.__version__, "fmkit_mlflow.version": version, "fmkit.task": recipe.task.name,
            "fmkit.model": recipe.model.name, "fmkit.run_dir": str(Path(run.run_dir).resolve()),
            "fmkit.world_size": str(run.world_size)}
    env = _read_json(Path(run.run_dir) / "environment.json")
    if env.get("git_commit"):
        tags["mlflow.source.git.commit"] = str(env["git_commit"])
    plugins = [p for p in env.get("plugins", []) if isinstance(p, dict)]
    if plugins:
        tags["fmkit.plugins"] = ", ".join(f"{p.get('name')} {p.get('version') or ''}".strip() for p in plugins)
    if env.get("device"):
        tags["fmkit.device"] = str(env["device"])
    tags.update(settings.tags if settings is not None else {})
    return tags


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
