"""The one atomic write of liverfib: a temporary file beside the target, fsync, then one rename.

A reader (or a later run) sees either the old file or the complete new one, never a half-written
file; a failed write leaves the earlier file untouched and no temporary behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]


@contextmanager
def atomic_write(
    path: str | Path, mode: str = "w", encoding: str | None = "utf-8", errors: str = "strict"
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on clean exit it replaces ``path`` in one rename.

    ``mode`` is ``"w"`` (text) or ``"wb"`` (bytes). Parent folders are created. The file keeps the
    permissions of the file it replaces (0644 for a new one). On any exception the temporary file is
    removed and ``path`` is left as it was. ``errors`` is the text encoding's error handler
    (``"surrogateescape"`` writes non-UTF-8 file names back as their original bytes).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    perm = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, perm)
        kwargs = {"encoding": encoding, "errors": errors, "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return Path(path)
