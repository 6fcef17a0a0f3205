"""Feature tables on disk: Parquet (pyarrow), one row per image, pyradiomics column names.

Identifier columns (:data:`ID_COLUMNS`) come first; every other column is a float feature named
``<image type>_<class>_<Feature>`` (e.g. ``original_glcm_Contrast``). The extraction settings are
stored in the file's schema metadata (key ``liverfib.radiomics.config``, YAML) so a table always
says how it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import InputError
from liverfib.io.atomic import atomic_write

__all__ = ["ID_COLUMNS", "FeatureTable", "read_feature_table", "write_feature_table"]

#: Non-feature columns, in this order when present.
ID_COLUMNS = ("path", "sha256", "n_copies", "roi", "roi_pixels")
_CONFIG_KEY = b"liverfib.radiomics.config"


@dataclass(frozen=True)
class FeatureTable:
    """An in-memory feature table.

    Attributes:
        ids: identifier columns (``path`` always), each a list of N values.
        names: F feature names.
        values: ``(N, F)`` float64 features.
        config_yaml: the extraction settings as YAML text ("" if unknown).
    """

    ids: dict[str, list[Any]]
    names: list[str]
    values: np.ndarray
    config_yaml: str = ""

    @property
    def paths(self) -> list[str]:
        return [str(p) for p in self.ids["path"]]

    def select(self, rows: Sequence[int]) -> FeatureTable:
        idx = np.asarray(rows, dtype=np.intp)
        ids = {k: [v[i] for i in idx] for k, v in self.ids.items()}
        return FeatureTable(ids, list(self.names), self.values[idx], self.config_yaml)


def write_feature_table(rows: Sequence[dict[str, Any]], path: str | Path, config_yaml: str = "") -> Path:
    """Write rows (dicts of id columns + features) to Parquet atomically; features must be finite."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        raise InputError("no feature rows to write")
    path = Path(path)
    ids = [c for c in ID_COLUMNS if c in rows[0]]
    names = [c for c in rows[0] if c not in ID_COLUMNS]
    columns: dict[str, Any] = {c: [r[c] for r in rows] for c in ids}
    values = np.array([[r[n] for n in names] for r in rows], dtype=np.float64)
    if not np.isfinite(values).all():
        i, j = np.argwhere(~np.isfinite(values))[0]
        raise InputError(f"{rows[i]['path']}: feature '{names[j]}' is not finite ({values[i, j]})")
    for j, name in enumerate(names):
        columns[name] = values[:, j]
    table = pa.table(columns)
    table = table.replace_schema_metadata({_CONFIG_KEY: config_yaml.encode()})
    with atomic_write(path, "wb") as fh:
        pq.write_table(table, fh)
    return path


def read_feature_table(path: str | Path) -> FeatureTable:
    """Read a table written by :func:`write_feature_table` (or any Parquet with a ``path`` column)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: feature table not found; create it with 'liverfib radiomics extract'")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for non-Parquet input
        raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    cols = table.column_names
    if "path" not in cols:
        raise InputError(f"{path}: expected a 'path' column, found {cols[:6]}")
    ids = {c: table.column(c).to_pylist() for c in cols if c in ID_COLUMNS}
    names = [c for c in cols if c not in ID_COLUMNS]
    if not names:
        raise InputError(f"{path}: no feature columns besides {list(ids)}")
    try:
        values = np.column_stack([table.column(n).to_numpy(zero_copy_only=False) for n in names]).astype(
            np.float64
        )
    except (TypeError, ValueError):
        raise InputError(f"{path}: feature columns must be numeric") from None
    meta = table.schema.metadata or {}
    return FeatureTable(ids, names, values, meta.get(_CONFIG_KEY, b"").decode())
