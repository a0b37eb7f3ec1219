"""Atomic writes: write to a temporary sibling, fsync, then rename over the target.

A reader sees the old file or the new one, never half of one; a crash leaves at most a stray
``.tmp-*`` sibling, never a truncated file. A full disk (or quota) becomes one
:class:`fmkit.errors.DiskFullError` naming the target and the free space, with the temporary
removed and the previous version of the target left in place.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import DiskFullError, UsageError

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
#: a target that cannot be written where it is: the caller gave a wrong path (usage), not a crash
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EBUSY,
               errno.ENAMETOOLONG, errno.ENOENT}


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: temporary files and folders are private (0600/0700) while written; the result gets the mode a
#: plain open() or mkdir() would have given it under the user's umask
_UMASK = _current_umask()
FILE_MODE, DIR_MODE = 0o666 & ~_UMASK, 0o777 & ~_UMASK


def is_disk_full(e: BaseException) -> bool:
    """Whether an error says the disk (or the user's quota) is full; also for libraries that wrap
    the OS error in their own type (safetensors reports ``StorageFull`` in its message)."""
    if isinstance(e, OSError) and e.errno in _FULL:
        return True
    text = str(e)
    return "No space left on device" in text or "StorageFull" in text or "Disk quota exceeded" in text


def free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes on the file system holding ``path`` (its nearest existing parent), or None."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def disk_full_error(path: str | os.PathLike) -> DiskFullError:
    return DiskFullError(Path(path), free_bytes(path))


def _write(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _misplaced(path: Path) -> str | None:
    """Why no file can be written at ``path`` whatever the permissions: a folder is there, or a file
    stands where one of its parent folders goes; ``None`` otherwise."""
    if path.is_dir():
        return "it is a folder; give a file path"
    blocker = next((a for a in path.parents if a.exists()), None)
    if blocker is not None and not blocker.is_dir():
        return f"{blocker} is a file, not a folder"
    return None


def unwritable_error(path: Path, e: OSError) -> UsageError:
    """One line saying why ``path`` cannot be written (a folder where a file goes, a file where a
    folder goes, no permission, a read-only file system)."""
    return UsageError(f"cannot write {path}: {_misplaced(path) or e.strerror or e}")


def _not_a_regular_file(path: Path) -> bool:
    """Whether ``path`` exists (through links) as something other than a file or a folder: a
    character device, a FIFO, a socket."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _write_through(path: Path, data: bytes) -> None:
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        if is_disk_full(e):
            raise disk_full_error(path) from None
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None


def check_writable(path: str | os.PathLike) -> None:
    """Raise :class:`UsageError` now, before any work, when a file could not be written at ``path``:
    a folder there, a file where a parent folder goes, a name longer than file systems allow, a
    parent folder that exists but cannot be written. (The write itself may still fail later: a full
    disk, say.)"""
    path = Path(path)
    if len(os.fsencode(path.name)) > 255:
        raise UsageError(f"cannot write {str(path)[:80]}...: a file name may have at most 255 bytes")
    if _not_a_regular_file(path):
        return
    wrong = _misplaced(path)
    if wrong:
        raise UsageError(f"cannot write {path}: {wrong}")
    nearest = next((a for a in path.absolute().parents if a.exists()), None)
    if nearest is not None and not os.access(nearest, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {path}: {nearest} is not writable")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module); a full disk is a
    :class:`~fmkit.errors.DiskFullError`, a path that cannot be written a
    :class:`~fmkit.errors.UsageError` saying why."""
    path = Path(path)
    if _not_a_regular_file(path):  # a device or a pipe (-o /dev/stdout): written through, as a shell's > would
        _write_through(path, data)
        return
    if path.is_symlink():  # replace the file the link points to, never the link itself
        path = Path(os.path.realpath(path))
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # the temporary's name stays within the 255 bytes a file name may have
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name[:100]}-", dir=path.parent)
        _write(fd, data)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if is_disk_full(e):
            raise disk_full_error(path) from None
        if isinstance(e, OSError) and e.errno in _UNWRITABLE:
            raise unwritable_error(path, e) from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    tmp = None
    made = [p for p in [path.parent, *path.parent.parents] if not p.exists()]  # folders this call creates
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # the name cut short: with the prefix and suffix a long (valid) name would pass the 255-byte limit
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name[:64]}-", dir=path.parent))
        yield tmp
        os.chmod(tmp, DIR_MODE)
        if path.exists():
            if not overwrite:
                raise FileExistsError(path)
            old = path.with_name(f".old-{path.name}-{os.getpid()}")  # the name a killed resume restores
            if len(os.fsencode(old.name)) > 255:  # a long export name: a holder folder of a shorter name
                old = Path(tempfile.mkdtemp(prefix=f".old-{path.name[:64]}-", dir=path.parent)) / "old"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old.parent if old.name == "old" else old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for folder in made:  # innermost first: nothing of a failed write is left, empty folders included
            try:
                folder.rmdir()
            except OSError:
                break
        if is_disk_full(e) and not isinstance(e, DiskFullError):
            raise disk_full_error(path) from None
        raise
