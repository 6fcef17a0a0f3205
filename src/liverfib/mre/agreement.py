"""Agreement between two stiffness measurements of the same exams (automatic vs manual, A vs B).

* Pearson r with the Fisher z 95 % CI.
* ICC(2,1) (two-way random, absolute agreement, single rater) and ICC(3,1) (two-way mixed,
  consistency) from the ANOVA mean squares (Shrout & Fleiss 1979); 95 % CIs from the F
  distribution as in McGraw & Wong 1996 (the formulas pingouin and R ``irr`` use).
* Bland-Altman bias and 95 % limits of agreement (bias ± 1.96 SD), with t-based CIs for the bias
  and the approximate CIs of the limits (SE = sqrt(3 SD² / n), Bland & Altman 1999), in kPa and as
  a percentage of the pair mean.
* Cohen's kappa (unweighted and quadratic-weighted, scikit-learn) on stage categories with a
  percentile bootstrap 95 % CI; per-stage F1 of the stage categories.
* Dice and IoU of masks, summarised per reference stage with bootstrap 95 % CIs (pixel-wise F1
  equals Dice and is not repeated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from liverfib.errors import InputError
from liverfib.mre.stages import STAGES

__all__ = [
    "pearson_ci",
    "icc",
    "bland_altman",
    "stage_agreement",
    "mask_agreement",
    "bootstrap_ci",
    "kappa_from_codes",
]


def _pair(a: Sequence[float], b: Sequence[float], min_n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    a_, b_ = np.asarray(a, float), np.asarray(b, float)
    if a_.shape != b_.shape or a_.ndim != 1:
        raise InputError(f"expected two equally long lists of values, got {a_.shape} and {b_.shape}")
    if len(a_) < min_n:
        raise InputError(f"agreement needs at least {min_n} paired exams, got {len(a_)}")
    if not (np.isfinite(a_).all() and np.isfinite(b_).all()):
        raise InputError("agreement values contain NaN/inf; drop or fix those exams")
    return a_, b_


def pearson_ci(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict[str, float | int]:
    """Pearson r, two-sided p and the Fisher-z CI (needs n >= 4 for a finite CI)."""
    from scipy.stats import norm, pearsonr

    x, y = _pair(a, b)
    n = len(x)
    if np.std(x) == 0 or np.std(y) == 0:
        raise InputError("Pearson r is undefined: one of the measurements is constant")
    r, p = pearsonr(x, y)
    zc = norm.ppf(0.5 + level / 2)
    if n > 3 and abs(r) < 1:
        z, se = math.atanh(r), 1 / math.sqrt(n - 3)
        lo, hi = math.tanh(z - zc * se), math.tanh(z + zc * se)
    else:
        lo, hi = (float(r), float(r)) if abs(r) == 1 else (-1.0, 1.0)
    return {"r": float(r), "ci_low": lo, "ci_high": hi, "p": float(p), "n": n}


def icc(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict[str, dict[str, float]]:
    """ICC(2,1) and ICC(3,1) with CIs for two raters (columns a, b) over n subjects."""
    from scipy.stats import f as fdist

    x, y = _pair(a, b)
    data = np.stack([x, y], axis=1)
    n, k = data.shape
    grand = data.mean()
    msr = k * ((data.mean(1) - grand) ** 2).sum() / (n - 1)
    msc = n * ((data.mean(0) - grand) ** 2).sum() / (k - 1)
    sse = ((data - data.mean(1, keepdims=True) - data.mean(0, keepdims=True) + grand) ** 2).sum()
    mse = sse / ((n - 1) * (k - 1))
    alpha = 1 - level
    icc3 = (msr - mse) / (msr + (k - 1) * mse)
    icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    out: dict[str, dict[str, float]] = {}
    if mse > 0:
        f0 = msr / mse
        fl = f0 / fdist.ppf(1 - alpha / 2, n - 1, (n - 1) * (k - 1))
        fu = f0 * fdist.ppf(1 - alpha / 2, (n - 1) * (k - 1), n - 1)
        out["icc3_1"] = {"icc": float(icc3), "ci_low": float((fl - 1) / (fl + k - 1)),
                         "ci_high": float((fu - 1) / (fu + k - 1))}
        a_ = k * icc2 / (n * (1 - icc2))
        b_ = 1 + k * icc2 * (n - 1) / (n * (1 - icc2))
        v = (a_ * msc + b_ * mse) ** 2 / ((a_ * msc) ** 2 / (k - 1) + (b_ * mse) ** 2 / ((n - 1) * (k - 1)))
        fs = fdist.ppf(1 - alpha / 2, n - 1, v)
        fs2 = fdist.ppf(1 - alpha / 2, v, n - 1)
        lo = n * (msr - fs * mse) / (fs * (k * msc + (k * n - k - n) * mse) + n * msr)
        hi = n * (fs2 * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fs2 * msr)
        out["icc2_1"] = {"icc": float(icc2), "ci_low": float(lo), "ci_high": float(hi)}
    else:  # identical measurements: perfect agreement, degenerate CI
        out["icc3_1"] = {"icc": 1.0, "ci_low": 1.0, "ci_high": 1.0}
        out["icc2_1"] = {"icc": 1.0, "ci_low": 1.0, "ci_high": 1.0}
    return out


def bland_altman(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    """Bias (a - b) and limits of agreement with CIs, in kPa and in % of the pair mean."""
    from scipy.stats import norm, t

    x, y = _pair(a, b)
    n = len(x)
    zc = norm.ppf(0.5 + level / 2)
    tc = t.ppf(0.5 + level / 2, n - 1)

    def summary(diff: np.ndarray) -> dict[str, float]:
        bias, sd = float(diff.mean()), float(diff.std(ddof=1))
        se_bias, se_loa = sd / math.sqrt(n), math.sqrt(3 * sd * sd / n)
        lo, hi = bias - zc * sd, bias + zc * sd
        return {
            "bias": bias, "bias_ci_low": bias - tc * se_bias, "bias_ci_high": bias + tc * se_bias, "sd": sd,
            "loa_low": lo, "loa_low_ci_low": lo - tc * se_loa, "loa_low_ci_high": lo + tc * se_loa,
            "loa_high": hi, "loa_high_ci_low": hi - tc * se_loa, "loa_high_ci_high": hi + tc * se_loa,
        }

    mean = (x + y) / 2
    out: dict[str, Any] = {"n": n, "kpa": summary(x - y)}
    if (mean > 0).all():
        out["percent"] = summary((x - y) / mean * 100)
    return out


def bootstrap_ci(values: np.ndarray, stat, n_boot: int = 2000, seed: int = 0,  # type: ignore[no-untyped-def]
                 level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of ``stat(indices)`` over resampled row indices."""
    n = len(values)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        s = stat(rng.integers(0, n, n))
        if s is not None and np.isfinite(s):
            stats.append(s)
    if len(stats) < n_boot / 2:
        return None, None
    lo, hi = np.percentile(stats, [50 * (1 - level), 100 - 50 * (1 - level)])
    return float(lo), float(hi)


def kappa_from_codes(ia: np.ndarray, ib: np.ndarray, k: int, weights: str | None = None) -> float | None:
    """Cohen's kappa of integer codes 0..k-1 (scikit-learn's formula, vectorised for the bootstrap)."""
    cm = np.bincount(ia * k + ib, minlength=k * k).reshape(k, k).astype(float)
    expected = np.outer(cm.sum(1), cm.sum(0)) / cm.sum()
    grid = np.subtract.outer(np.arange(k), np.arange(k)) ** 2
    w = grid if weights == "quadratic" else (grid > 0).astype(float)
    denom = (w * expected).sum()
    return None if denom == 0 else float(1 - (w * cm).sum() / denom)


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
        lo, hi = bootstrap_ci(full, lambda idx, w=w: kappa_from_codes(ia[idx], ib[idx], len(labels), w), n_boot=n_boot, seed=seed)
        out[name] = {"value": value if np.isfinite(value) else None, "ci_low": lo, "ci_high": hi}
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
        dl, dh = bootstrap_ci(d, lambda idx: float(d[idx].mean()), n_boot=n_boot, seed=seed)
        il, ih = bootstrap_ci(j, lambda idx: float(j[idx].mean()), n_boot=n_boot, seed=seed)
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
