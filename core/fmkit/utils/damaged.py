"""Files fmkit reads back (a run directory's, an export's) that were damaged or removed after they
were written: one :class:`~fmkit.errors.DataError` naming the file and what may help, instead of
a parser's traceback.

:func:`reading` is the one mechanism: a ``with`` block that reads one file (or one folder of
files, such as a task's assets) and turns what its parser or loader raises into
``"PATH is damaged (ERROR): HINT"`` or ``"PATH is missing: HINT"``. :func:`read_json` and
:func:`read_yaml` use it for the plain files; the callers give the hint (an earlier checkpoint,
training or exporting again).
"""
from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError, FmkitError

log = logging.getLogger("fmkit")

#: errors :func:`reading` lets through as they are: fmkit's own (already clear) and those that say
#: something is missing from the installation or the machine, not from the file
_PASS = (FmkitError, ImportError, MemoryError, RecursionError)
#: the most JSON files of a folder :func:`reading` parses to find which one is damaged
_SCAN_FILES = 64


def run_hint(run_dir: Path | str) -> str:
    """What may help when a file of a run directory (other than a checkpoint's) is damaged."""
    return (f"the run {run_dir} cannot be checked or loaded; restore the file from a copy, or re-run the "
            "`fmkit train` that made the run")


def checkpoint_hint(directory: Path | str) -> str:
    """What may help when a file of the checkpoint ``directory`` is damaged."""
    directory = Path(directory)
    if directory.name == "best":
        return (f"the run's best model cannot be loaded; restore the file from a copy, or re-run the "
                f"`fmkit train` that made the run {directory.parent.parent}")
    return (f"resume from an earlier checkpoint (remove {directory}: --resume then takes the one before it, if "
            "the run kept one), or re-run the `fmkit train` that made the run")


def export_hint(directory: Path | str, meta: dict | None = None) -> str:
    """What may help when a file of the export ``directory`` is damaged."""
    meta = meta if isinstance(meta, dict) else {}
    run, fmt = meta.get("source_run"), meta.get("format")
    again = (f"fmkit export {run} --format {fmt} -o {directory}" if isinstance(run, str) and isinstance(fmt, str)
             else "fmkit export RUN_DIR --format FORMAT")
    return f"the export {directory} cannot be loaded; restore it from a copy, or export the run again ({again})"


def _reason(e: BaseException) -> str:
    """The error, shortened to one line: its type and the first line of its message (a YAML error:
    its problem and line)."""
    problem, mark = getattr(e, "problem", None), getattr(e, "problem_mark", None)
    if isinstance(problem, str) and mark is not None and isinstance(getattr(mark, "line", None), int):
        return f"line {mark.line + 1}: {problem}"
    text = str(e).strip().splitlines()[0].strip() if str(e).strip() else ""
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _culprit(path: Path) -> Path:
    """In a folder that failed to load, the first JSON file that does not parse (the folder when none)."""
    if not path.is_dir():
        return path
    try:
        files = sorted(p for p in path.rglob("*.json") if p.is_file())[:_SCAN_FILES]
    except OSError:
        return path
    for p in files:
        try:
            json.loads(p.read_bytes())
        except (ValueError, OSError):
            return p
    return path


def missing(path: Path | str, hint: str) -> DataError:
    return DataError(f"{path} is missing: {hint}")


def damaged(path: Path | str, hint: str, why: str) -> DataError:
    return DataError(f"{path} is damaged ({why}): {hint}")


@contextlib.contextmanager
def reading(path: Path | str, hint: str) -> Iterator[None]:
    """Read ``path`` (a file, or a folder of files) inside the block; what the block raises becomes a
    :class:`DataError` saying that the file is missing, unreadable or damaged, followed by ``hint``.

    fmkit's own errors, and missing packages (:class:`ImportError`), pass unchanged. A folder whose
    loading failed is searched for the JSON file that does not parse, to name that one."""
    path = Path(path)
    try:
        yield
    except _PASS:
        raise
    except FileNotFoundError as e:
        gone = Path(e.filename) if isinstance(e.filename, (str, Path)) and e.filename else path
        raise missing(gone, hint) from None
    except (PermissionError, IsADirectoryError, NotADirectoryError) as e:
        where = Path(e.filename) if isinstance(e.filename, (str, Path)) and e.filename else path
        raise DataError(f"{where} cannot be read ({e.strerror or _reason(e)}): {hint}") from None
    except Exception as e:  # noqa: BLE001 - whatever a parser raises on a damaged file
        log.debug("reading %s failed", path, exc_info=True)
        if not path.exists():
            raise missing(path, hint) from None
        culprit = _culprit(path)
        if culprit.is_dir():  # no file of it stands out: one is damaged or missing
            raise DataError(f"{culprit} is damaged or incomplete ({_reason(e)}): {hint}") from None
        raise damaged(culprit, hint, _reason(e)) from None


def mismatch(e: BaseException) -> str:
    """The first difference a failed ``load_state_dict`` reports, in one short line."""
    import re

    text = str(e)
    m = re.search(r"size mismatch for ([^:]+): copying a param with shape torch\.Size\((\[[^\]]*\])\) from "
                  r"checkpoint, the shape in current model is torch\.Size\((\[[^\]]*\])\)", text)
    if m:
        return f"{m.group(1)} is {m.group(2)} in the file, {m.group(3)} in the model"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else (lines[0] if lines else "")
    return line if len(line) <= 300 else line[:297] + "..."


def read_json(path: Path | str, hint: str, kind: type | tuple[type, ...] | None = dict) -> Any:
    """The JSON in ``path``; missing, unreadable, not JSON or (``kind``) not of that type: a :class:`DataError`."""
    path = Path(path)
    with reading(path, hint):
        data = json.loads(path.read_bytes())
    if kind is not None and not isinstance(data, kind):
        raise damaged(path, hint, f"it holds {_json_type(data)} where {_json_type_name(kind)} belongs")
    return data


def read_yaml(path: Path | str, hint: str, kind: type | tuple[type, ...] | None = dict, empty: Any = None) -> Any:
    """The YAML in ``path`` (safe loading; ``empty`` for an empty file), checked as :func:`read_json` does."""
    import yaml

    path = Path(path)
    with reading(path, hint):
        data = yaml.safe_load(path.read_bytes().decode("utf-8-sig"))
    if data is None:
        data = empty
    if kind is not None and not isinstance(data, kind):
        raise damaged(path, hint, f"it holds {_json_type(data)} where {_json_type_name(kind)} belongs")
    return data


_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}


def _json_type(value: Any) -> str:
    """What a parsed JSON or YAML value is, in words (``an object``, ``a list``...)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return _NAMES.get(type(value), type(value).__name__)


def _json_type_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(_NAMES.get(k, k.__name__) for k in (kind if isinstance(kind, tuple) else (kind,)))


def read_task_state(path: Path | str, hint: str) -> dict:
    """A task's saved state (``task.json``): a JSON object whose ``labels``, when there, are a list or null."""
    state = read_json(path, hint)
    labels = state.get("labels")
    if labels is not None and not isinstance(labels, list):
        raise damaged(path, hint, f"its labels are {_json_type(labels)}, not a list")
    return state


__all__ = ["reading", "read_json", "read_yaml", "read_task_state", "missing", "damaged", "mismatch", "run_hint",
           "checkpoint_hint", "export_hint"]
