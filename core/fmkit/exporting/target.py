"""Where an export may be written: a new path, an empty folder, or an earlier fmkit export (which
it replaces, as exporting again should). Anything else is refused before any work: an export
replaces its folder whole, so ``-o .``, ``-o ~`` or ``-o RUN`` would otherwise delete what is there."""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError


def export_target(output: str | Path, run_dir: str | Path) -> Path:
    """``output`` made absolute, after refusing a path that holds anything but an earlier export:
    a file, a folder with other files, the run directory or a folder above it, the current folder
    or a folder above it."""
    out = Path(output).expanduser().absolute()
    resolved = out.resolve()
    shown = str(output)
    if resolved == Path(resolved.anchor):
        raise UsageError(f"-o {shown} is the file system's root: give a new folder for the export")
    for what, inside in (("the run directory being exported", Path(run_dir).resolve()),
                         ("the current folder", Path.cwd().resolve())):
        if inside == resolved or inside.is_relative_to(resolved):
            raise UsageError(f"-o {shown} is {'' if inside == resolved else 'a folder holding '}{what}; an export "
                             "replaces its folder whole: give a new folder for the export")
    if not out.exists() and not out.is_symlink():
        return out
    if not out.is_dir() or out.is_symlink():
        raise UsageError(f"-o {shown} exists and is not a folder; an export is a folder: give a new path, or remove "
                         "the file first")
    entries = [p.name for p in out.iterdir()]
    if entries and "export.json" not in entries:
        listed = ", ".join(sorted(entries)[:5]) + (" ..." if len(entries) > 5 else "")
        raise UsageError(f"-o {shown} is a folder that is not an fmkit export (it holds {listed}); an export replaces "
                         "its folder whole: give a new or empty folder, or remove this one first")
    return out
