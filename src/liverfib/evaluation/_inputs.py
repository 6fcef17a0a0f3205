"""Checks on the inputs of the stage metrics: class names in stage order, labels, probabilities (N, K)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from liverfib.errors import ConfigError, InputError
from liverfib.evaluation.predictions_csv import SUM_TOL

__all__ = ["STAGE_ORDER", "check_inputs", "check_same_length"]

#: METAVIR fibrosis stages in ascending order.
STAGE_ORDER = ("F0", "F1", "F2", "F3", "F4")
#: Ordinal class scales whose order is checked: METAVIR, LiQA (MRI), CirrMRI600+ radiological grade.
_ORDINAL_SCALES = (STAGE_ORDER, ("S1", "S2", "S3", "S4"), ("mild", "moderate", "severe"))


def _check_classes(classes: Sequence[str]) -> list[str]:
    names = list(classes)
    if len(names) < 2:
        raise ConfigError(f"Expected at least 2 classes (e.g. F0..F4), got {names}")
    if not all(isinstance(c, str) and c for c in names):
        raise ConfigError(f"Expected class names as non-empty strings, got {names}")
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise ConfigError(f"Expected unique class names, got duplicates {dup} in {names}")
    for scale in _ORDINAL_SCALES:
        stages = [c for c in names if c in scale]
        if stages != sorted(stages, key=scale.index):
            raise ConfigError(f"Expected classes in ascending stage order ({', '.join(scale)}), got {names}")
    return names


def _check_probs(probs: Any, n: int, k: int, what: str = "probs") -> np.ndarray:
    try:
        arr = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"Expected {what} as a numeric (N, K) array, got {type(probs).__name__}: {exc}"
        ) from None
    if arr.ndim != 2 or arr.shape != (n, k):
        raise InputError(f"Expected {what} of shape (N, K) = ({n}, {k}) (one row per label), got {arr.shape}")
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise InputError(f"Expected finite {what}, found NaN/inf in row {row}")
    if (arr < 0).any():
        row = int(np.flatnonzero((arr < 0).any(axis=1))[0])
        raise InputError(f"Expected non-negative {what}, found {arr[row].min():.4g} in row {row}")
    sums = arr.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOL)
    if bad.size:
        raise InputError(
            f"Expected each row of {what} to sum to 1 (+-{SUM_TOL}), row {int(bad[0])} sums to "
            f"{sums[bad[0]]:.6g} ({bad.size} rows off); pass softmax outputs, not logits"
        )
    return arr


def _encode_labels(y_true: Sequence[str], classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    labels = list(y_true)
    unknown = sorted({str(y) for y in labels if y not in index})
    if unknown:
        raise InputError(f"Expected labels among {classes}, got unknown {unknown[:5]}")
    return np.fromiter((index[y] for y in labels), dtype=np.intp, count=len(labels))


def check_inputs(
    y_true: Sequence[str], probs: Any, classes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Labels as class indices (N,), probabilities (N, K) and class names, after checking all three."""
    names = _check_classes(classes)
    if len(y_true) == 0:
        raise InputError("Expected at least one prediction, got empty y_true")
    y = _encode_labels(y_true, names)
    return y, _check_probs(probs, len(y), len(names)), names


def check_same_length(values: Sequence[str] | None, n: int, what: str) -> list[str] | None:
    """``values`` as strings, one per label (None stays None)."""
    if values is None:
        return None
    out = [str(v) for v in values]
    if len(out) != n:
        raise InputError(f"Expected {what} with one entry per label ({n}), got {len(out)}")
    return out
