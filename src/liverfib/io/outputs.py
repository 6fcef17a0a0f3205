"""Check an output path before any work starts (the ``-o/--out`` convention).

One convention for every command: ``--out`` is a **folder** when a command writes several files and a
**file** only when it writes exactly one. Both checks run before a model loads or an input is read, so
a typo or an unwritable place fails in well under a second, and nothing is created on failure.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from liverfib.errors import InputError

__all__ = ["check_output_file", "check_output_dir"]


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_writable(path: Path, option: str) -> None:
    """Raise :class:`InputError` unless a file can be created at or below ``path``'s nearest parent."""
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise InputError(f"{option} {path}: {base} is a file, not a folder; choose another place")
    try:  # os.access() says yes for root even on /proc; creating a file is the real test
        fd, probe = tempfile.mkstemp(dir=base, prefix=".liverfib-probe.")
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot write there ({exc.strerror}); choose a writable place") from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


def check_output_file(path: Path, suffixes: Sequence[str], option: str = "--out") -> Path:
    """Validate ``path`` as the one output file of a command (e.g. ``predictions.csv``).

    Refuses an existing folder, a name without one of ``suffixes`` (``--out new/`` arrives as
    ``new``) and an unwritable place. Creates nothing.
    """
    path = Path(path)
    want = " or ".join(suffixes)
    if path.is_dir():
        raise InputError(
            f"{option} {path} is a folder; this command writes one file: pass a file name such as "
            f"{path / ('predictions' + suffixes[0])}"
        )
    if path.suffix.lower() not in [s.lower() for s in suffixes]:
        raise InputError(f"{option} {path}: expected a {want} file name (this command writes one file)")
    _check_writable(path, option)
    return path


def check_output_dir(path: Path, option: str = "--out") -> Path:
    """Validate ``path`` as an output folder (it may not exist yet). Creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is a file; this command writes several files: pass a folder")
    _check_writable(path / "probe", option)
    return path
