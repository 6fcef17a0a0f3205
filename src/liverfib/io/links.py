"""Symbolic links stored as text ("link stubs").

Where a file system or a checkout cannot hold symlinks (git with ``core.symlinks=false``, some
read-only mounts), a link arrives as a tiny file whose whole content is the relative target path,
e.g. ``F6703.jpg``. The shared ultrasound set is distributed like that. liverfib follows such stubs
(and real symlinks) so that a copy is read as the image it points to, and the audit counts it as an
exact copy of its target.
"""

from __future__ import annotations

from pathlib import Path

from liverfib.errors import InputError

__all__ = ["MAX_STUB_BYTES", "read_link_stub", "resolve_file"]

#: A link stub is at most this long (a path, not an image).
MAX_STUB_BYTES = 1024
_MAX_HOPS = 8


def read_link_stub(path: Path) -> Path | None:
    """If ``path`` is a link stub pointing to an existing file, return the target, else ``None``."""
    try:
        if path.is_symlink() or path.stat().st_size > MAX_STUB_BYTES or path.stat().st_size == 0:
            return None
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\n" in text.rstrip("\n") or "\x00" in text or text.strip() != text.rstrip("\n"):
        return None
    target_rel = text.rstrip("\n")
    if not target_rel or target_rel.startswith("/"):
        return None
    target = path.parent / target_rel
    return target if target.is_file() else None


def resolve_file(path: str | Path) -> Path:
    """Follow symlinks and link stubs to the real file. Raises for loops or dangling links."""
    current = Path(path)
    for _ in range(_MAX_HOPS):
        if current.is_symlink():
            resolved = current.resolve()
            if not resolved.exists():
                raise InputError(f"{path}: dangling link to {resolved}")
            current = resolved
            continue
        target = read_link_stub(current)
        if target is None:
            return current
        current = target
    raise InputError(f"{path}: more than {_MAX_HOPS} chained links (loop?)")
