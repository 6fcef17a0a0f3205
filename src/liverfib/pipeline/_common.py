"""Helpers shared by the workflow modules of :mod:`liverfib.pipeline`."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["progress_bar", "write_rows", "collect_files", "unique_stems", "read_2d_images", "printable"]


def progress_bar(desc: str, unit: str = "it") -> Callable[..., None]:
    """A ``update(done, total, **metrics)`` callback on the shared :class:`liverfib.progress.Progress`."""
    from liverfib.progress import Progress

    state: dict[str, Progress] = {}

    def update(done: int, total: int, **metrics: Any) -> None:
        if "bar" not in state:
            state["bar"] = Progress(total, desc, unit)
        state["bar"].set(done, total, **metrics)
        if done >= total:
            state["bar"].close()

    return update


def write_rows(rows: Sequence[dict[str, Any]], path: Path, columns: Sequence[str]) -> None:
    """Write a CSV atomically (see :mod:`liverfib.io.atomic`): a failure leaves an earlier file intact."""
    from liverfib.io.atomic import atomic_write

    with atomic_write(path, mode="w", errors="surrogateescape") as fh:  # non-UTF-8 names keep their bytes
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def collect_files(paths: Sequence[Path]) -> list[Path]:
    """Files given directly plus the image files under given folders (sorted, recursive)."""
    from liverfib.io import list_images

    files: list[Path] = []
    for p in paths:
        files.extend(list_images(p))
    return files


def unique_stems(files: Sequence[Path]) -> list[str]:
    """Output names per input: the file stem, prefixed by its parent folder where stems collide."""
    from collections import Counter

    counts = Counter(f.stem for f in files)
    return [f"{f.parent.name}_{f.stem}" if counts[f.stem] > 1 else f.stem for f in files]


def read_2d_images(
    files: Sequence[Path], *, check: Any = None, what: str = "processed"
) -> tuple[list[Path], list[Any], list[dict[str, str]]]:
    """Read 2D images, collecting unreadable/unsuitable ones as ``{"path", "error"}`` records.

    ``check(image) -> str | None`` may refuse an image with a reason (e.g. not B-mode). Raises
    :class:`InputError` when nothing is left.
    """
    from liverfib.errors import InputError, LiverfibError
    from liverfib.io import read_image

    good, images, errors = [], [], []
    for f in files:
        try:
            image = read_image(f)
            reason = check(image) if check is not None else None
        except LiverfibError as exc:
            errors.append({"path": str(f), "error": str(exc)})
            continue
        if image.array.ndim != 2:
            reason = f"expected a 2D image, got shape {image.shape}"
        if reason:
            errors.append({"path": str(f), "error": f"{f}: {reason}; not {what}"})
            continue
        good.append(Path(f))
        images.append(image)
    if not images:
        raise InputError(f"no image could be {what}: " + "; ".join(e["error"] for e in errors[:3]))
    return good, images, errors


def printable(text: str) -> str:
    """``text`` with undecodable file-name bytes (surrogate escapes) shown as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
