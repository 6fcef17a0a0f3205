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

__all__ = ["atomic_write"]


def atomic_write(
    path: str | Path,
    mode: str = "w",
    encoding: str | None = "utf-8",
    errors: str = "strict",
    *,
    data: bytes | str | None = None,
) -> Any:
    """Write ``path`` atomically: whole new file or the old one, never half of either.

    With ``data=`` (``bytes`` or ``str``; ``mode`` is then taken from its type), writes it and returns
    ``path`` as a ``Path``; text is encoded with ``encoding`` and written without newline translation.
    Without ``data``, returns a context manager yielding an open temporary file (``mode`` ``"w"``
    text or ``"wb"`` bytes) that replaces ``path`` on clean exit. Parent folders are created; the file keeps the
    permissions of the file it replaces (0644 for a new one). On any exception the temporary file is
    removed and ``path`` is left as it was. ``errors`` is the text encoding's error handler
    (``"surrogateescape"`` writes non-UTF-8 file names back as their original bytes).
    """
    if data is None:
        return _replacing_file(Path(path), mode, encoding, errors)
    if not isinstance(data, (bytes, bytearray, memoryview, str)):
        raise TypeError(f"atomic_write: data must be bytes or str, got {type(data).__name__}")
    with _replacing_file(Path(path), "w" if isinstance(data, str) else "wb", encoding, errors) as fh:
        fh.write(data)
    return Path(path)


@contextmanager
def _replacing_file(path: Path, mode: str, encoding: str | None, errors: str) -> Iterator[IO[Any]]:
    """Temporary file beside ``path``; fsync and rename over ``path`` on clean exit, else removed."""
    if mode not in ("w", "wb"):
        got = repr(mode) if isinstance(mode, str) else type(mode).__name__
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {got}; pass content as data=")
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
