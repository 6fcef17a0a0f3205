"""One result-JSON shape for every figure in BENCHMARKS.md: ``benchmarks/results/<name>.json``.

Each file records what was measured and how, so a reader can reproduce it::

    {
      "name": "us_staging_default",
      "title": "...",                     # one line, what the figure is
      "metrics": {"accuracy": {"value": 0.66, "ci": [0.57, 0.75]}, ...},
      "n": 175,                           # units scored (distinct images, cases, exams, ...)
      "unit": "distinct image",
      "groups": 160,                      # bootstrap clusters (null if not grouped)
      "split": {"file": "runs/splits/grouped.csv", "sha256": "...", "subset": "test"},
      "test_scored_count": 1,             # times this model's test subset has been scored
      "command": "liverfib evaluate ...",
      "code_version": "git describe",     # of the tree that produced the figure
      "date": "2026-12-02T17:00:00Z",
      "device": "cpu (2 cores)",
      "synthetic": false,                 # computed on phantoms / by a synthetic-trained model
      "extra": {...}                      # anything else (per-source figures, settings)
    }

A metric is ``{"value": v, "ci": [lo, hi] | null}``; ``ci`` is a 95 % interval (say how it was
obtained in ``extra.ci_method`` when it is not the cluster bootstrap).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from liverfib.io.jsonio import write_json

__all__ = ["REQUIRED_KEYS", "code_version", "device_string", "file_sha256", "metric", "read_result", "write_result"]

REQUIRED_KEYS = (
    "name", "title", "metrics", "n", "unit", "split", "test_scored_count", "command",
    "code_version", "date", "device", "synthetic",
)


def metric(value: float, ci: tuple[float, float] | list[float] | None = None) -> dict[str, Any]:
    """One metric entry: ``{"value": v, "ci": [lo, hi]}`` (``ci`` may be ``None``)."""
    return {"value": float(value), "ci": None if ci is None else [float(ci[0]), float(ci[1])]}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (split CSVs, manifests)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_version(repo: str | Path | None = None) -> str:
    """``git describe --always --dirty`` of the source tree, or ``liverfib <version>`` outside git."""
    from liverfib._version import __version__

    where = Path(repo) if repo else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=where, capture_output=True, text=True, timeout=10, check=True,
        )
        return f"liverfib {__version__} ({out.stdout.strip()})"
    except (OSError, subprocess.SubprocessError):
        return f"liverfib {__version__}"


def device_string(threads: int | None = None) -> str:
    """Where the figure was computed, e.g. ``cpu x86_64, 2 cores, 2 torch threads``."""
    text = f"cpu {platform.machine()}, {os.cpu_count()} cores"
    if threads is not None:
        text += f", {threads} torch threads"
    return text


def write_result(
    name: str,
    *,
    title: str,
    metrics: Mapping[str, Mapping[str, Any]],
    n: int,
    unit: str,
    command: str,
    synthetic: bool,
    split_file: str | Path | None = None,
    subset: str | None = None,
    groups: int | None = None,
    test_scored_count: int | None = None,
    device: str | None = None,
    extra: Mapping[str, Any] | None = None,
    results_dir: str | Path = "benchmarks/results",
) -> Path:
    """Write ``<results_dir>/<name>.json`` in the one result shape (atomically); returns the path.

    ``test_scored_count``: when ``subset == "test"`` and it is not given, the count stored in an
    existing file of the same name is carried forward and increased by one, so re-scoring a test
    subset is visible. Pass it explicitly for figures without a test subset (CV, phantoms).
    """
    path = Path(results_dir) / f"{name}.json"
    for key, entry in metrics.items():
        if not isinstance(entry, Mapping) or "value" not in entry or "ci" not in entry:
            raise ValueError(f"write_result: metric {key!r} must be {{'value': v, 'ci': [lo, hi] | None}}")
    if test_scored_count is None:
        previous = 0
        if path.exists():
            previous = int(json.loads(path.read_text()).get("test_scored_count") or 0)
        test_scored_count = previous + 1 if subset == "test" else previous
    split: dict[str, Any] | None = None
    if split_file is not None or subset is not None:
        split = {
            "file": None if split_file is None else str(split_file),
            "sha256": file_sha256(split_file) if split_file is not None and Path(split_file).is_file() else None,
            "subset": subset,
        }
    record = {
        "name": name,
        "title": title,
        "metrics": {k: dict(v) for k, v in metrics.items()},
        "n": int(n),
        "unit": unit,
        "groups": None if groups is None else int(groups),
        "split": split,
        "test_scored_count": int(test_scored_count),
        "command": command,
        "code_version": code_version(),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device or device_string(),
        "synthetic": bool(synthetic),
        "extra": dict(extra or {}),
    }
    return write_json(record, path)


def read_result(path: str | Path) -> dict[str, Any]:
    """Read a result JSON and check it has every required key (``ValueError`` naming the missing)."""
    record = json.loads(Path(path).read_text())
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ValueError(f"{path}: result JSON lacks {', '.join(missing)}")
    return record
