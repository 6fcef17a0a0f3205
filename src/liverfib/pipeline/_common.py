"""Helpers shared by the workflow modules of :mod:`liverfib.pipeline`."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["progress_bar", "write_rows", "collect_files", "unique_stems", "read_2d_images"]


def progress_bar(desc: str):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=desc, unit="img", leave=False, mininterval=0.5, disable=None)
        bar["bar"].n = done
        bar["bar"].refresh() if done == total else None
        if done == total:
            bar["bar"].close()

    return update


def write_rows(rows: Sequence[dict[str, Any]], path: Path, columns: Sequence[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


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
