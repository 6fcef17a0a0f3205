"""The shipped models, as data: task, command, file, measured figure, where it came from, size.

``liverfib models`` prints this table. A figure is read from ``benchmarks/results/<result>.json``
(the one result-JSON shape, :mod:`liverfib.evaluation.results`) when that file exists in the source
tree; otherwise the figure recorded here from the model's documented evaluation is shown, with its
source. Nothing here loads torch.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["ShippedModel", "SHIPPED_MODELS", "list_shipped", "model_accuracy"]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
RESULTS = Path(__file__).resolve().parents[3] / "benchmarks" / "results"


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model; ``figure`` is the documented measurement (used when no result JSON exists)."""

    name: str
    task: str
    command: str
    bundle: str  # folder under liverfib/assets (see models.assets.SHIPPED)
    figure: str
    source: str
    synthetic: bool = False
    result: str | None = None  # benchmarks/results/<result>.json, preferred when present
    caveat: str = ""  # what a reader of a single result must know (confounding, synthetic training)


SHIPPED_MODELS: tuple[ShippedModel, ...] = (
    ShippedModel(
        "us_staging_default", "ultrasound staging F0-F4", "predict, explain, report, serve",
        "us_staging_default",
        "5-stage accuracy 0.491 [95% CI 0.417, 0.569], macro-AUC 0.804 [0.762, 0.852] on 175 held-out "
        "distinct images whose same-scan groups are disjoint from training (public liver-us-fibrosis set; "
        "accuracy 0.453 on scanner S1, 0.551 on scanner S2)",
        "benchmarks/results/us_staging_default.json (BENCHMARKS.md §4)", result="us_staging_default",
        caveat="In the public training set the stage is confounded with the scanner (two devices with "
        "different stage mixes; accuracy 0.453 on one, 0.551 on the other), so part of what the model learned "
        "may be the device rather than the liver. Images from other scanners are untested.",
    ),
    ShippedModel(
        "us_liver_seg_default", "ultrasound liver segmentation", "segment --modality us, explain",
        "us_liver_seg_default",
        "Dice 0.665 [0.601, 0.724] (leave-one-subject-out CV, 27 images, 2 subjects)",
        "benchmarks/results/us_liver_seg_loso.json", result="us_liver_seg_loso",
    ),
    ShippedModel(
        "mri_seg_default", "MR/CT liver segmentation", "segment --modality mr|ct, predict-mri",
        "mri_seg_default",
        "Dice 0.923 [0.899, 0.946] (8 held-out CT cases, 2D slices); 0.893 [0.853, 0.933] (2 real volumes)",
        "benchmarks/results/ct_seg_slices.json", result="ct_seg_slices",
    ),
    ShippedModel(
        "mre_seg_default", "MRE liver segmentation", "mre", "mre_seg_default",
        "kPa vs phantom truth on fresh independent NIfTI phantoms (SYNTHETIC; never seen a real exam)",
        "benchmarks/results/mre_phantom_independent_nifti.json", synthetic=True,
        result="mre_phantom_independent_nifti",
        caveat="The liver mask comes from a model trained on SYNTHETIC phantoms only; check the outlined ROI. "
        "The stage comes from published stiffness cut-offs, not from a trained classifier.",
    ),
    ShippedModel(
        "mri_staging_synthetic", "MRI staging (LiQA layout)", "predict-mri", "mri_staging_synthetic",
        "trained and tested on SYNTHETIC MRI only; says nothing about real scans",
        "benchmarks/mri_staging_results.json", synthetic=True, result="mri_staging_synthetic",
        caveat="Trained on SYNTHETIC data only: not a clinical result.",
    ),
)


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
    extra = f" (n={res.get('n')} {res.get('unit', '')}".rstrip() + ")"
    synthetic = "; SYNTHETIC" if res.get("synthetic") else ""
    return ", ".join(parts[:3]) + extra + synthetic, f"benchmarks/results/{name}.json"


def model_accuracy(name: str) -> dict[str, Any] | None:
    """The measured figure of shipped model ``name``: ``{"model", "task", "figure", "source", "synthetic",
    "caveat"}``; ``None`` for a model liverfib does not ship (a user's checkpoint)."""
    for m in SHIPPED_MODELS:
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
    for m in SHIPPED_MODELS:
        if not (fnmatch.fnmatch(m.name, pattern) or fnmatch.fnmatch(m.task, pattern)):
            continue
        path = ASSETS / m.bundle
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
    from liverfib.models.tasks import task_rows

    tasks = task_rows(pattern)
    if tasks:
        lines.append("tasks (registry: modality, kind, shipped bundle):")
        lines += [f"task {t['name']:23s} {t['modality']:4s} {t['kind']:10s} default: {t['default_bundle']}" for t in tasks]
    return {"shipped": rows, "tasks": tasks, "backbones": backbones}, "\n".join(lines)
