"""Leakage-free splits: whole near-duplicate clusters (and patients) go to one side.

Groups are the audit's near-duplicate clusters, merged when a patient column links them. The split
is stratified by label × source where the groups allow it (scikit-learn's StratifiedGroupKFold).
``naive=True`` splits per file at random and exists only to show the leakage in benchmarks.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import ConfigError, InputError

__all__ = [
    "check_split_options",
    "SPLIT_COLUMNS",
    "assign_groups",
    "make_split",
    "make_folds",
    "read_split_csv",
    "write_split_csv",
]

SPLIT_COLUMNS = ("path", "label", "group", "cluster", "source", "split")


def assign_groups(files: Sequence[dict[str, Any]]) -> list[str]:
    """Group id per file: clusters joined transitively through shared patients."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for row in files:
        find("c:" + row["cluster"])
        if row.get("patient"):
            a, b = find("c:" + row["cluster"]), find("p:" + str(row["patient"]))
            if a != b:
                parent[b] = a
    roots = [find("c:" + row["cluster"]) for row in files]
    names = {r: f"g{k:05d}" for k, r in enumerate(dict.fromkeys(roots))}
    return [names[r] for r in roots]


def _strata(files: Sequence[dict[str, Any]]) -> list[str]:
    return [f"{row['label']}|{row.get('source', '')}" for row in files]


def _feasible_strata(strata: list[str], n_splits: int) -> list[str]:
    """Coarsen label×source strata to label, then to none, until one stratum has ``n_splits``
    members (StratifiedGroupKFold raises a ValueError otherwise, e.g. on small balanced sets)."""
    from collections import Counter

    for candidate in (strata, [s.rsplit("|", 1)[0] for s in strata]):
        if max(Counter(candidate).values()) >= n_splits:
            return candidate
    return [""] * len(strata)


def _one_fold(strata: list[str], groups: list[str], fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of a held-out part of about ``fraction`` of the items, group-disjoint."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = max(2, int(round(1.0 / fraction)))
    n_groups = len(set(groups))
    if n_groups < n_splits:
        raise InputError(f"only {n_groups} independent groups; cannot hold out {fraction:.0%} by group")
    sgkf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    strata = _feasible_strata(strata, n_splits)
    _, held = next(iter(sgkf.split(np.zeros(len(strata)), strata, groups)))
    mask = np.zeros(len(strata), bool)
    mask[held] = True
    return mask


def check_split_options(
    *, val: float = 0.15, test: float = 0.15, folds: int | None = None, naive: bool = False
) -> None:
    """Validate split options (cheap; call before any audit work)."""
    if folds is not None:
        if naive:
            raise ConfigError("--naive and --folds cannot be combined")
        if folds < 2:
            raise ConfigError(f"--folds must be at least 2, got {folds}")
        return
    if not 0.0 <= val < 1.0 or not 0.0 <= test < 1.0 or val + test >= 1.0:
        raise ConfigError(
            f"--val-fraction and --test-fraction must be fractions in [0, 1) summing below 1, got {val} and {test}"
        )


def make_split(
    files: Sequence[dict[str, Any]],
    *,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    naive: bool = False,
) -> list[dict[str, Any]]:
    """Assign ``split`` = train/val/test to each file (rows from the audit's file table)."""
    check_split_options(val=val, test=test)
    if not files:
        raise InputError("no files to split")
    groups = [str(i) for i in range(len(files))] if naive else assign_groups(files)
    strata = _strata(files)
    split = np.array(["train"] * len(files), dtype=object)
    if naive:
        rng = np.random.default_rng(seed)
        u = rng.random(len(files))
        split[u < test] = "test"
        split[(u >= test) & (u < test + val)] = "val"
    else:
        rest = np.arange(len(files))
        if test > 0:
            held = _one_fold(strata, groups, test, seed)
            split[held] = "test"
            rest = np.flatnonzero(~held)
        if val > 0:
            frac = val / (1.0 - test)
            held = _one_fold([strata[i] for i in rest], [groups[i] for i in rest], frac, seed + 1)
            split[rest[held]] = "val"
    return [
        {**_base(row), "group": g, "split": str(s)} for row, g, s in zip(files, groups, split, strict=True)
    ]


def make_folds(files: Sequence[dict[str, Any]], *, folds: int = 5, seed: int = 0) -> list[dict[str, Any]]:
    """Grouped, stratified K-fold: ``split`` = ``fold0`` .. ``fold{K-1}``."""
    from sklearn.model_selection import StratifiedGroupKFold

    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}")
    groups = assign_groups(files)
    if len(set(groups)) < folds:
        raise InputError(f"only {len(set(groups))} independent groups; cannot make {folds} folds")
    sgkf = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_of = np.zeros(len(files), int)
    strata = _feasible_strata(_strata(files), folds)
    for k, (_, held) in enumerate(sgkf.split(np.zeros(len(files)), strata, groups)):
        fold_of[held] = k
    return [
        {**_base(row), "group": g, "split": f"fold{k}"}
        for row, g, k in zip(files, groups, fold_of, strict=True)
    ]


def _base(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": row["path"],
        "label": row["label"],
        "cluster": row.get("cluster", ""),
        "source": row.get("source", ""),
    }


def write_split_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write split rows atomically (:mod:`liverfib.io.atomic`; non-UTF-8 file names keep their bytes)."""
    from liverfib.io.atomic import atomic_write

    path = Path(path)
    with atomic_write(path, mode="w", errors="surrogateescape") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(SPLIT_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in SPLIT_COLUMNS})
    return path


def read_split_csv(path: str | Path) -> list[dict[str, str]]:
    """Read a split CSV written by :func:`write_split_csv`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: split CSV not found; create it with 'liverfib split DATA_DIR --out {path}'"
        )
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"path", "label", "split"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(
                f"{path}: missing columns {sorted(missing)}; expected {', '.join(SPLIT_COLUMNS)}"
            )
        rows = list(reader)
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows
