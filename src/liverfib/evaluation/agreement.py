"""Agreement statistics between two measurements of the same subjects, and bootstrap CIs.

* Pearson r with the Fisher z 95 % CI; Lin's concordance correlation coefficient (CCC).
* ICC(2,1) (two-way random, absolute agreement, single rater) and ICC(3,1) (two-way mixed,
  consistency) from the ANOVA mean squares (Shrout & Fleiss 1979); 95 % CIs from the F
  distribution as in McGraw & Wong 1996 (the formulas pingouin and R ``irr`` use).
  :func:`icc_2_1` is the vectorised point estimate over many features (radiomics robustness).
* Bland-Altman bias and 95 % limits of agreement (bias ± 1.96 SD), with t-based CIs for the bias
  and the approximate CIs of the limits (SE = sqrt(3 SD² / n), Bland & Altman 1999), in the
  measurement's unit and as a percentage of the pair mean.
* Cohen's kappa of integer codes (unweighted or quadratic), vectorised for the bootstrap.
* Percentile bootstrap CI of any statistic over resampled rows.

The metrics home of liverfib: segmentation overlap lives in :mod:`liverfib.evaluation.segmentation`,
classification metrics in :mod:`liverfib.evaluation.metrics`; modality packages import from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from liverfib.errors import InputError

__all__ = ["pearson_ci", "lins_ccc", "icc", "icc_2_1", "bland_altman", "bootstrap_ci", "kappa_from_codes"]

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
    """Bias (a - b) and limits of agreement with CIs, in the values' unit (key ``kpa``, the MRE use) and in % of the pair mean."""
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


def lins_ccc(a: Sequence[float], b: Sequence[float]) -> float:
    """Lin's concordance correlation coefficient: 2 cov / (var_a + var_b + (mean_a - mean_b)^2)."""
    x, y = _pair(a, b)
    sxy = float(np.mean((x - x.mean()) * (y - y.mean())))
    denom = float(x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    return 1.0 if denom == 0 else 2 * sxy / denom


def icc_2_1(values: np.ndarray) -> np.ndarray:
    """ICC(2,1) of ``values`` shaped ``(n_subjects, k_raters)`` or ``(n, k, F)`` -> scalar or ``(F,)``.

    A feature constant over all subjects and raters has no between-subject variance: its ICC is 0
    (useless for telling images apart), not NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 2:
        raise InputError(f"ICC needs (n_subjects >= 2, k_raters >= 2[, F]) values, got shape {x.shape}")
    n, k, _ = x.shape
    grand = x.mean(axis=(0, 1))
    row = x.mean(axis=1)
    col = x.mean(axis=0)
    msr = k * ((row - grand) ** 2).sum(axis=0) / (n - 1)
    msc = n * ((col - grand) ** 2).sum(axis=0) / (k - 1)
    resid = x - row[:, None, :] - col[None, :, :] + grand
    mse = (resid**2).sum(axis=(0, 1)) / ((n - 1) * (k - 1))
    denom = msr + (k - 1) * mse + k * (msc - mse) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        icc = np.where(denom > 0, (msr - mse) / denom, 0.0)
    return float(icc[0]) if squeeze else icc
