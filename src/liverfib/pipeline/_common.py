"""Helpers shared by the workflow modules of :mod:`liverfib.pipeline`."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["progress_bar", "write_rows", "collect_files", "unique_stems"]


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
