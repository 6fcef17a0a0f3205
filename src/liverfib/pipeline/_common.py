"""Helpers shared by the workflow modules of :mod:`liverfib.pipeline`."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["progress_bar", "write_rows"]


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
