"""Shared steps of the radiomics commands: a feature table joined to a split by path, feature
columns, prediction rows and metrics (with group-bootstrap CIs) and their one-line text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError


def spread(n_rows: int, n: int) -> list[int]:
    """Up to ``n`` row indices spread evenly over ``range(n_rows)`` (first and last included)."""
    import numpy as np

    if n <= 0 or n_rows == 0:
        return []
    return [int(i) for i in np.unique(np.linspace(0, n_rows - 1, min(n, n_rows)).round())]


_CLASSES_ORDER = ("F0", "F1", "F2", "F3", "F4")


def path_key(path: str, root: Path | None) -> str:
    """Absolute normalised path (relative paths taken under ``root``): the join key of tables and splits."""
    import os

    p = Path(path)
    if root is not None and not p.is_absolute():
        p = root / p
    return os.path.normpath(os.path.abspath(p))


def join_split(
    table: Any, split_csv: Path, data_dir: Path | None, subsets: set[str] | None = None
) -> tuple[Any, list[dict[str, str]]]:
    """Rows of ``table`` that appear in the split (by path), with their split rows, in table order."""
    from liverfib.dataset.split import read_split_csv

    rows = read_split_csv(split_csv)
    by_key = {path_key(r["path"], data_dir): r for r in rows if subsets is None or r["split"] in subsets}
    idx, matched = [], []
    for i, p in enumerate(table.paths):
        r = by_key.get(path_key(p, None))
        if r is not None:
            idx.append(i)
            matched.append(r)
    if not idx:
        raise InputError(
            f"none of the {len(table.paths)} feature rows match a path in {split_csv}"
            + (f" (subsets {sorted(subsets)})" if subsets else "")
            + "; pass --data DATASET_ROOT so the split's relative paths resolve "
            f"(e.g. feature path {table.paths[0]!r} vs split path {rows[0]['path']!r})"
        )
    return table.select(idx), matched


def classes_of(labels: list[str]) -> list[str]:
    """The labels present, F0..F4 first in stage order."""
    present = sorted(set(labels), key=lambda c: (_CLASSES_ORDER.index(c) if c in _CLASSES_ORDER else 99, c))
    return present


def robust_names(features: Path, names: list[str], threshold: float) -> tuple[list[str], str | None]:
    """Names passing the ICC filter if ``<features>.robustness.json`` exists, else all."""
    import json

    icc_path = Path(features).with_suffix(".robustness.json")
    if not icc_path.is_file():
        return names, None
    icc = json.loads(icc_path.read_text())["icc"]
    keep = [n for n in names if icc.get(n, 0.0) >= threshold]
    if not keep:
        raise ConfigError(f"{icc_path}: no feature reaches ICC >= {threshold}; lower icc_threshold")
    return keep, str(icc_path)


def columns(table: Any, names: list[str]) -> Any:
    """Feature matrix ``(N, len(names))`` of ``table`` in the order of ``names``."""
    index = {n: j for j, n in enumerate(table.names)}
    return table.values[:, [index[n] for n in names]]


def prediction_columns(classes: list[str]) -> list[str]:
    """Columns of a predictions CSV: path, label, one probability per class, group, source."""
    return ["path", "label", *[f"prob_{c}" for c in classes], "group", "source"]


def prediction_rows(
    paths: list[str], split_rows: list[dict[str, str]], probs: Any, classes: list[str]
) -> list[dict]:
    """One predictions-CSV row per image (probabilities with 6 decimals)."""
    out = []
    for p, r, pr in zip(paths, split_rows, probs, strict=True):
        row = {
            "path": r["path"],
            "label": r["label"],
            "group": r.get("group") or r.get("cluster") or p,
            "source": r.get("source") or "?",
        }
        row.update({f"prob_{c}": f"{v:.6f}" for c, v in zip(classes, pr, strict=True)})
        out.append(row)
    return out


def split_metrics(
    split_rows: list[dict[str, str]], probs: Any, classes: list[str], n_boot: int, seed: int
) -> dict:
    """Classification metrics of ``probs`` against the split's labels, CIs by group bootstrap."""
    from liverfib.evaluation.metrics import evaluate_probabilities

    groups = [r.get("group") or r.get("cluster") or r["path"] for r in split_rows]
    sources = [r.get("source") or "?" for r in split_rows]
    return evaluate_probabilities(
        [r["label"] for r in split_rows],
        probs,
        classes,
        groups=groups,
        sources=sources,
        n_boot=n_boot,
        seed=seed,
    )


def format_metrics(
    m: dict[str, Any], keys: Sequence[str] = ("accuracy", "macro_auc", "auc_ge_f2", "kappa_quadratic")
) -> str:
    """``accuracy 0.700 [0.600, 0.800], ...`` for the text output."""
    parts = []
    for k in keys:
        v, ci = m.get(k), (m.get("ci95") or {}).get(k)
        parts.append(
            f"{k} {v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "") if v is not None else f"{k} n/a"
        )
    return ", ".join(parts)
