"""Versions come from one place, each distribution's ``pyproject.toml``: an installed package reads
its number from the installed metadata, a source tree that is not installed from that file."""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

#: what a package reports when it is neither installed nor inside its source tree
UNKNOWN = "0+unknown"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_version(path: Path, distribution: str) -> str | None:
    """``[project] version`` of ``path`` when its ``[project] name`` is ``distribution``, else ``None``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    section = re.search(r"^\[project\][ \t]*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    fields = dict(re.findall(r'^(name|version)\s*=\s*"([^"]*)"', section.group(1), re.M)) if section else {}
    if _normalise(fields.get("name", "")) != _normalise(distribution):
        return None
    return fields.get("version")


def distribution_version(distribution: str, package_file: str) -> str:
    """The version of ``distribution``, the one that provides the package whose ``__init__.py`` is
    ``package_file``: from the installed metadata (``importlib.metadata``); when it is not installed
    (a source tree on ``PYTHONPATH``), from the ``pyproject.toml`` of the tree holding the package;
    else :data:`UNKNOWN`."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        pass
    package_dir = Path(package_file).resolve().parent
    for root in (package_dir.parent, package_dir.parent.parent):  # plugins/NAME/PACKAGE, core/fmkit
        found = pyproject_version(root / "pyproject.toml", distribution)
        if found:
            return found
    return UNKNOWN
