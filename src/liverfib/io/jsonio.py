"""Write results as JSON atomically: a temporary file in the target folder, then one rename."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.io.atomic import atomic_write

__all__ = ["tidy_floats", "write_json"]

#: Significant digits kept in JSON floats: drops binary noise (2861.5499999999997 -> 2861.55) and
#: nothing a measurement carries.
SIGNIFICANT_DIGITS = 12


def _tidy(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(value) else value


def tidy_floats(value: Any) -> Any:
    """``value`` with every float (also numpy floats, in dicts/lists/tuples) rounded to
    :data:`SIGNIFICANT_DIGITS` significant digits; everything else unchanged."""
    if isinstance(value, Mapping):
        return {k: tidy_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [tidy_floats(v) for v in value]
    if isinstance(value, np.float32 | np.float16):
        return float(f"{value.item():.7g}")  # a float32 holds ~7 significant digits
    if isinstance(value, np.floating):
        value = value.item()
    if isinstance(value, float):
        return _tidy(value)
    return value


def _to_builtin(value: Any, where: str) -> Any:
    """Convert numpy scalars/arrays, paths and tuples to JSON types; reject NaN/inf (no silent NaN)."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            k = key.item() if isinstance(key, np.generic) else key
            if not isinstance(k, str | int | float | bool) and k is not None:
                raise TypeError(f"write_json: expected str/int keys, got {type(key).__name__} at {where}")
            out[str(k) if not isinstance(k, str) else k] = _to_builtin(item, f"{where}.{k}")
        return out
    if isinstance(value, np.ndarray):
        return [_to_builtin(v, f"{where}[{i}]") for i, v in enumerate(value.tolist())]
    if isinstance(value, list | tuple):
        return [_to_builtin(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.float32 | np.float16) and np.isfinite(value):
        return float(f"{value.item():.7g}")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"write_json: expected finite numbers, found {value} at {where}; use None instead")
    if isinstance(value, float):
        return _tidy(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(result: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``result`` to ``path`` as indented JSON; the file is either complete or untouched.

    numpy scalars and arrays become plain numbers and lists; floats keep 12 significant digits. NaN/inf raise ``ValueError`` before
    anything is written. Parent folders are created. Returns the path.
    """
    text = json.dumps(_to_builtin(result, "result"), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, data=text)
