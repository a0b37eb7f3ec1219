"""Where an export may be written: a new path, an empty folder, or an earlier fmkit export (which
it replaces, as exporting again should). Anything else is refused before any work: an export
replaces its folder whole, so ``-o .``, ``-o ~`` or ``-o RUN`` would otherwise delete what is there."""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError


def export_target(output: str | Path, run_dir: str | Path, flag: str = "-o") -> Path:
    """``output`` made absolute, after refusing a path that holds anything but an earlier export:
    a file, a folder with other files (an earlier export's folder holding files it did not write
    included), the run directory or a folder above it, the current folder or a folder above it.
    ``flag`` names where the path came from in the messages (``export.output`` in a recipe)."""
    if not str(output).strip():
        raise UsageError(f"{flag} was given an empty path (an unset shell variable?): give the export's folder, or leave "
                         "it out for RUN/exports/FORMAT")
    out = Path(output).expanduser().absolute()
    resolved = out.resolve()
    shown = str(output)
    if resolved == Path(resolved.anchor):
        raise UsageError(f"{flag} {shown} is the file system's root: give a new folder for the export")
    for what, inside in (("the run directory being exported", Path(run_dir).resolve()),
                         ("the current folder", Path.cwd().resolve())):
        if inside == resolved or inside.is_relative_to(resolved):
            raise UsageError(f"{flag} {shown} is {'' if inside == resolved else 'a folder holding '}{what}; an export "
                             "replaces its folder whole: give a new folder for the export")
    if not out.exists() and not out.is_symlink():
        return out
    if out.is_symlink():
        raise UsageError(f"{flag} {shown} is a symbolic link; an export replaces its folder whole, link included: give "
                         "the folder it points to, or a new path")
    if not out.is_dir():
        raise UsageError(f"{flag} {shown} exists and is not a folder; an export is a folder: give a new path, or remove "
                         "the file first")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return out
    written = _written_by_an_export(out)
    if written is None:
        listed = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
        raise UsageError(f"{flag} {shown} is a folder that is not an fmkit export (it holds {listed}); an export replaces "
                         "its folder whole: give a new or empty folder, or remove this one first")
    extra = [name for name in entries if not written(name)]
    if extra:
        listed = ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")
        raise UsageError(f"{flag} {shown} is an earlier export that now also holds {listed}, which exporting again would "
                         "delete: move them out, or give another folder")
    return out


#: what an export wrote before exports recorded it (``written`` in export.json)
_EXPORT_ENTRIES = {"export.json", "recipe.yaml", "task", "hf_config"}


def _written_by_an_export(folder: Path):
    """A test of which names an earlier export wrote in ``folder``, or ``None`` when its export.json is
    not an fmkit export's (missing, not JSON, not a mapping with the format it was written in)."""
    import json

    try:
        meta = json.loads((folder / "export.json").read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("format"), str) or "source_run" not in meta:
        return None
    listed = meta.get("written")
    if isinstance(listed, list) and all(isinstance(x, str) for x in listed):
        return set(listed).__contains__
    return lambda name: name in _EXPORT_ENTRIES or name.startswith("model.")
