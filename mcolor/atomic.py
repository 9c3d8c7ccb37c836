"""Atomic file writing: a temporary file in the target folder, fsync, ``os.replace``, then fsync of the folder.

A reader never sees a half-written output, and a crash leaves either the old file or none. The folder is
synced too because the rename lives in the folder's entry: without it, a power cut right after a write
can bring back the old file (or none) even though the new one was complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from mcolor.errors import McolorError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; it replaces ``path`` only on success."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise McolorError(f"cannot write {path}: {exc.strerror or exc}", reason="output_not_writable",
                          path=path) from exc
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Persist a rename in ``folder``; best effort, as not every platform can open a folder (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[IO[Any]], None], mode: str = "w", **kwargs: Any) -> None:
    """Call ``write(fh)`` on a temporary file and move it to ``path`` when it returns."""
    try:
        with atomic_open(path, mode, **kwargs) as fh:
            write(fh)
    except OSError as exc:
        raise McolorError(f"cannot write {path}: {exc.strerror or exc}", reason="output_not_writable",
                          path=path) from exc
