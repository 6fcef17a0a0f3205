"""Agreement of MRE read-outs on stage categories and liver masks (the statistics themselves live in
:mod:`liverfib.evaluation.agreement`).

* Cohen's kappa (unweighted and quadratic-weighted, scikit-learn) on stage categories with a
  percentile bootstrap 95 % CI; per-stage F1 of the stage categories.
* Dice and IoU of masks, summarised per reference stage with bootstrap 95 % CIs (pixel-wise F1
  equals Dice and is not repeated).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from liverfib.errors import InputError
from liverfib.evaluation.agreement import kappa_from_codes
from liverfib.evaluation.resampling import bootstrap
from liverfib.mre.stages import STAGES

__all__ = ["stage_agreement", "mask_agreement"]


def stage_agreement(stage_a: Sequence[str], stage_b: Sequence[str], n_boot: int = 2000,
                    seed: int = 0) -> dict[str, Any]:
    """Cohen's kappa (plain and quadratic) with bootstrap CIs, confusion matrix, per-stage F1."""
    import warnings

    from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score

    bad = sorted({s for s in [*stage_a, *stage_b] if s not in STAGES})
    if bad:
        raise InputError(f"unknown stage labels {bad}; expected {', '.join(STAGES)}")
    a, b = np.asarray(stage_a), np.asarray(stage_b)
    if len(a) != len(b) or len(a) < 2:
        raise InputError(f"stage agreement needs >= 2 paired exams, got {len(a)} and {len(b)}")
    labels = list(STAGES)

    ia = np.array([labels.index(s) for s in a])
    ib = np.array([labels.index(s) for s in b])

    full = np.arange(len(a))
    out: dict[str, Any] = {"n": len(a), "percent_agreement": float((a == b).mean() * 100)}
    for name, w in (("kappa", None), ("kappa_quadratic", "quadratic")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(cohen_kappa_score(a, b, labels=labels, weights=w))
        ci = bootstrap(lambda counts, w=w: kappa_from_codes(ia, ib, len(labels), w, sample_weight=counts),
                       full, n_boot=n_boot, seed=seed, min_valid=0.5)
        out[name] = {"value": value if np.isfinite(value) else None, "ci_low": ci.low, "ci_high": ci.high}
    out["confusion"] = {"labels": labels, "rows": "a", "columns": "b",
                        "matrix": confusion_matrix(a, b, labels=labels).tolist()}
    f1 = f1_score(b, a, labels=labels, average=None, zero_division=0)
    present = set(a) | set(b)
    out["f1_per_stage"] = {s: (float(v) if s in present else None) for s, v in zip(labels, f1, strict=True)}
    return out


def mask_agreement(rows: Sequence[dict[str, Any]], n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Summarise per-exam ``{"stage", "dice", "iou"}`` rows overall and per stage (mean, bootstrap CI)."""
    def summarise(sub: list[dict[str, Any]]) -> dict[str, Any]:
        d = np.array([r["dice"] for r in sub])
        j = np.array([r["iou"] for r in sub])
        dci = bootstrap(d, n_boot=n_boot, seed=seed, min_valid=0.5)
        ici = bootstrap(j, n_boot=n_boot, seed=seed, min_valid=0.5)
        dl, dh, il, ih = dci.low, dci.high, ici.low, ici.high
        return {"n": len(sub), "dice": float(d.mean()), "dice_ci_low": dl, "dice_ci_high": dh,
                "dice_min": float(d.min()), "iou": float(j.mean()), "iou_ci_low": il, "iou_ci_high": ih}

    if not rows:
        raise InputError("no masks to compare")
    out: dict[str, Any] = {"overall": summarise(list(rows)), "per_stage": {}}
    for s in STAGES:
        sub = [r for r in rows if r.get("stage") == s]
        if sub:
            out["per_stage"][s] = summarise(sub)
    return out
