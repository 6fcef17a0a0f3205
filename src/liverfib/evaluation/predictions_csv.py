"""Read a predictions CSV (``path,label,prob_<class>...`` + optional ``group``, ``source``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from liverfib.errors import InputError

__all__ = ["SUM_TOL", "read_predictions_csv"]

#: Tolerance on each row's probabilities summing to 1.
SUM_TOL = 1e-3


def read_predictions_csv(
    path: str | Path,
) -> tuple[list[str], list[str], np.ndarray, list[str], dict[str, list[str]]]:
    """Read a predictions CSV with columns ``path,label,prob_<class>...`` (+ optional ``group``, ``source``).

    Classes are taken from the ``prob_`` columns in header order (e.g. ``prob_F0..prob_F4``).
    Returns ``(paths, labels, probs (N, K), classes, extra)`` where ``extra`` holds the ``group``
    and ``source`` columns that are present.
    """
    path = Path(path)
    header, rows = _read_rows(path)
    prob_cols = _check_header(path, header)
    classes = [h[len("prob_") :] for h in prob_cols]
    col = {h: i for i, h in enumerate(header)}
    optional = [c for c in ("group", "source") if c in col]
    paths: list[str] = []
    labels: list[str] = []
    extra: dict[str, list[str]] = {c: [] for c in optional}
    probs = np.empty((len(rows), len(classes)))
    for i, row in enumerate(rows):
        line = i + 2
        if len(row) != len(header):
            raise InputError(f"{path}:{line}: expected {len(header)} fields, found {len(row)}")
        label = row[col["label"]].strip()
        if label not in classes:
            raise InputError(f"{path}:{line}: expected a label among {classes}, got {label!r}")
        probs[i] = _row_probabilities(f"{path}:{line}", [row[col[name]].strip() for name in prob_cols], prob_cols)
        for c in optional:
            value = row[col[c]].strip()
            if not value:
                raise InputError(f"{path}:{line}: empty {c}; fill it or drop the {c} column")
            extra[c].append(value)
        paths.append(row[col["path"]].strip())
        labels.append(label)
    if not rows:
        raise InputError(f"{path}: no prediction rows below the header")
    return paths, labels, probs, classes, extra


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The stripped header and the non-blank rows of a CSV file."""
    if not path.is_file():
        raise InputError(f"{path}: predictions CSV not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        rows = list(reader)
    return header, [r for r in rows if any(cell.strip() for cell in r)]


def _check_header(path: Path, header: list[str]) -> list[str]:
    """The ``prob_<class>`` columns, after checking ``path``, ``label`` and unique names."""
    prob_cols = [h for h in header if h.startswith("prob_")]
    missing = [c for c in ("path", "label") if c not in header]
    if missing or len(prob_cols) < 2:
        raise InputError(
            f"{path}: expected columns path,label,prob_F0..prob_F4[,group,source]; "
            f"missing {missing + (['prob_<class> (>=2)'] if len(prob_cols) < 2 else [])}, found {header}"
        )
    if len(set(header)) != len(header):
        raise InputError(f"{path}: expected unique column names, found {header}")
    return prob_cols


def _row_probabilities(where: str, cells: list[str], names: list[str]) -> np.ndarray:
    """One row's probabilities (K,): finite, >= 0 and summing to 1 within :data:`SUM_TOL`."""
    values = np.empty(len(cells))
    for j, (name, cell) in enumerate(zip(names, cells, strict=True)):
        try:
            value = float(cell)
        except ValueError:
            raise InputError(f"{where}: expected a number in {name}, got {cell!r}") from None
        if not math.isfinite(value):
            raise InputError(f"{where}: expected a finite probability in {name}, got {cell!r}")
        if value < 0:
            raise InputError(f"{where}: expected a probability >= 0 in {name}, got {cell!r}")
        values[j] = value
    total = values.sum()
    if abs(total - 1.0) > SUM_TOL:
        raise InputError(f"{where}: expected probabilities summing to 1 (+-{SUM_TOL}), got {total:.6g}")
    return values
