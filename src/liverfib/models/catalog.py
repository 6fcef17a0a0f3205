"""The shipped models as ``liverfib models`` and reports show them: task, command, file, measured figure,
where it came from, size. Each is the ``shipped`` entry of its task's row (:mod:`liverfib.models.tasks`).

A figure is read from ``benchmarks/results/<result>.json`` (the one result-JSON shape,
:mod:`liverfib.evaluation.results`) when that file exists in the source tree; otherwise the figure
recorded in the row from the model's documented evaluation is shown, with its source. Nothing here
loads torch.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from liverfib.models.assets import ASSETS_DIR
from liverfib.models.tasks import shipped_models, task_rows

__all__ = ["list_shipped", "model_accuracy"]

RESULTS = Path(__file__).resolve().parents[3] / "benchmarks" / "results"


def _from_result_json(name: str | None) -> tuple[str, str] | None:
    """``(figure, source)`` from ``benchmarks/results/<name>.json`` when it exists."""
    if not name:
        return None
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return None
    try:
        res = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    parts = []
    for key, m in (res.get("metrics") or {}).items():
        if isinstance(m, dict) and m.get("value") is not None:
            ci = m.get("ci")
            parts.append(f"{key} {m['value']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
    if not parts:
        return None
    subset = (res.get("split") or {}).get("subset")
    extra = f" (n={res.get('n')} {res.get('unit', '')}".rstrip() + (f"; {subset}" if subset else "") + ")"
    synthetic = "; SYNTHETIC" if res.get("synthetic") else ""
    return ", ".join(parts[:3]) + extra + synthetic, f"benchmarks/results/{name}.json"


def model_accuracy(name: str) -> dict[str, Any] | None:
    """The measured figure of shipped model ``name``: ``{"model", "task", "figure", "source", "synthetic",
    "caveat"}``; ``None`` for a model liverfib does not ship (a user's checkpoint)."""
    for m in shipped_models():
        if m.name == name:
            found = _from_result_json(m.result)
            figure, source = found if found else (m.figure, m.source)
            return {"model": m.name, "task": m.task, "figure": figure, "source": source,
                    "synthetic": m.synthetic, "caveat": m.caveat}
    return None


def list_shipped(pattern: str = "*") -> tuple[dict[str, Any], str]:
    """Shipped models (and registered backbones) matching ``pattern``: ``(summary, text)``."""
    from liverfib.models.registry import describe_models

    rows = []
    for m in shipped_models():
        if not (fnmatch.fnmatch(m.name, pattern) or fnmatch.fnmatch(m.task, pattern)):
            continue
        path = ASSETS_DIR / m.bundle
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file()) if path.is_dir() else None
        acc = model_accuracy(m.name) or {}
        rows.append({
            **{k: v for k, v in asdict(m).items() if k not in ("figure", "source", "result", "caveat")},
            "figure": acc.get("figure"), "figure_source": acc.get("source"),
            "size_mb": round(size / 1e6, 1) if size is not None else None,
            "installed": path.is_dir(),
        })
    backbones = [{"name": n, "weights": o} for n, o in describe_models(pattern)]
    lines = ["shipped models (use --model default):"] if rows else []
    for r in rows:
        size = f"{r['size_mb']:.1f} MB" if r["size_mb"] is not None else "missing"
        tag = "  SYNTHETIC" if r["synthetic"] else ""
        lines += [f"  {r['name']:24s} {r['task']}  [{size}]{tag}",
                  f"  {'':24s} used by: {r['command']}",
                  f"  {'':24s} measured: {r['figure']}",
                  f"  {'':24s} source: {r['figure_source']}"]
    if backbones:
        lines.append("staging backbones (liverfib train --backbone NAME):")
        lines += [f"  {b['name']:28s} {b['weights']}" for b in backbones]
    tasks = task_rows(pattern)
    if tasks:
        lines.append("tasks (registry: modality, kind, shipped bundle):")
        lines += [f"task {t['name']:23s} {t['modality']:4s} {t['kind']:10s} default: {t['default_bundle']}" for t in tasks]
    return {"shipped": rows, "tasks": tasks, "backbones": backbones}, "\n".join(lines)
