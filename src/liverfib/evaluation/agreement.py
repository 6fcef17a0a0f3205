"""Agreement statistics between two measurements of the same subjects, and bootstrap CIs.

* Pearson r with the Fisher z 95 % CI; Lin's concordance correlation coefficient (CCC).
* ICC(2,1) (two-way random, absolute agreement, single rater) or ICC(3,1) (two-way mixed,
  consistency) from the ANOVA mean squares (Shrout & Fleiss 1979), of one rating table or of
  many features at once (radiomics robustness); 95 % CIs from the F distribution as in McGraw &
  Wong 1996 (the formulas pingouin and R ``irr`` use).
* Bland-Altman bias and 95 % limits of agreement (bias ± 1.96 SD), with t-based CIs for the bias
  and the approximate CIs of the limits (SE = sqrt(3 SD² / n), Bland & Altman 1999), in the
  measurement's unit and as a percentage of the pair mean.
* Cohen's kappa of integer codes (unweighted or quadratic), vectorised over bootstrap weights.

Bootstrap CIs come from the one bootstrap, :func:`liverfib.evaluation.resampling.bootstrap`.

The metrics home of liverfib: segmentation overlap lives in :mod:`liverfib.evaluation.segmentation`,
classification metrics in :mod:`liverfib.evaluation.metrics`; modality packages import from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from liverfib.errors import InputError, unknown_choice

__all__ = ["ICC_FORMS", "pearson_ci", "lins_ccc", "icc", "bland_altman", "kappa_from_codes"]

#: ICC forms :func:`icc` computes (Shrout & Fleiss notation)
ICC_FORMS = ("2,1", "3,1")


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


def icc(ratings: np.ndarray | Sequence[Sequence[float]], *, form: str = "2,1", level: float | None = 0.95) -> dict[str, Any]:
    """ICC(2,1) or ICC(3,1) of ``ratings`` (n_subjects, k_raters), or of (n, k, F) F features at once.

    Returns ``{"icc", "ci_low", "ci_high"}``: floats, or (F,) arrays for 3-D ratings; no CI keys
    when ``level`` is None. Without residual variance the CI collapses onto the estimate; without
    any variance (a constant feature) the ICC is 0: it cannot tell subjects apart. A 2-D table
    must be finite; a feature with NaN/inf in a 3-D table gets NaN.
    """
    if form not in ICC_FORMS:
        raise unknown_choice("ICC form", form, ICC_FORMS)
    x = np.asarray(ratings, dtype=np.float64)
    single = x.ndim == 2
    x = x[:, :, None] if single else x
    if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 2:
        raise InputError(f"ICC needs (n_subjects >= 2, k_raters >= 2[, F]) ratings, got shape {x.shape}")
    if single and not np.isfinite(x).all():
        raise InputError("ICC ratings contain NaN/inf; drop or fix those subjects")
    n, k, _ = x.shape
    grand = x.mean(axis=(0, 1))
    msr = k * ((x.mean(axis=1) - grand) ** 2).sum(axis=0) / (n - 1)
    msc = n * ((x.mean(axis=0) - grand) ** 2).sum(axis=0) / (k - 1)
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + grand
    mse = (resid**2).sum(axis=(0, 1)) / ((n - 1) * (k - 1))
    denom = msr + (k - 1) * mse + (k * (msc - mse) / n if form == "2,1" else 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(denom > 0, (msr - mse) / denom, 0.0)
        out: dict[str, Any] = {"icc": value}
        if level is not None:
            ci = _mcgraw_wong_ci(value, msr, msc, mse, n, k, form, 1 - level)
            out["ci_low"], out["ci_high"] = (np.where(mse > 0, c, value) for c in ci)
    return {key: float(v[0]) for key, v in out.items()} if single else out


def _mcgraw_wong_ci(
    value: np.ndarray, msr: np.ndarray, msc: np.ndarray, mse: np.ndarray, n: int, k: int, form: str, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """McGraw & Wong (1996) F-distribution CI of ICC(3,1) or ICC(2,1)."""
    from scipy.stats import f as fdist

    if form == "3,1":
        f0 = msr / mse
        fl = f0 / fdist.ppf(1 - alpha / 2, n - 1, (n - 1) * (k - 1))
        fu = f0 * fdist.ppf(1 - alpha / 2, (n - 1) * (k - 1), n - 1)
        return (fl - 1) / (fl + k - 1), (fu - 1) / (fu + k - 1)
    a_ = k * value / (n * (1 - value))
    b_ = 1 + k * value * (n - 1) / (n * (1 - value))
    v = (a_ * msc + b_ * mse) ** 2 / ((a_ * msc) ** 2 / (k - 1) + (b_ * mse) ** 2 / ((n - 1) * (k - 1)))
    fs = fdist.ppf(1 - alpha / 2, n - 1, v)
    fs2 = fdist.ppf(1 - alpha / 2, v, n - 1)
    lo = n * (msr - fs * mse) / (fs * (k * msc + (k * n - k - n) * mse) + n * msr)
    hi = n * (fs2 * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fs2 * msr)
    return lo, hi


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


def kappa_from_codes(
    ia: np.ndarray, ib: np.ndarray, k: int, weights: str | None = None, sample_weight: np.ndarray | None = None
) -> Any:
    """Cohen's kappa of integer codes 0..k-1 (scikit-learn's formula); None when undefined.

    With ``sample_weight`` (B, N), e.g. bootstrap resample counts, returns (B,) kappas, NaN where undefined.
    """
    codes = np.asarray(ia) * k + np.asarray(ib)
    if sample_weight is None:
        cm = np.bincount(codes, minlength=k * k).reshape(1, k, k).astype(float)
    else:
        cm = (np.asarray(sample_weight, float) @ np.eye(k * k)[codes]).reshape(-1, k, k)
    expected = cm.sum(2)[:, :, None] * cm.sum(1)[:, None, :] / cm.sum(axis=(1, 2))[:, None, None]
    grid = np.subtract.outer(np.arange(k), np.arange(k)) ** 2
    w = grid if weights == "quadratic" else (grid > 0).astype(float)
    denom = (w * expected).reshape(len(cm), -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(denom == 0, np.nan, 1 - (w * cm).reshape(len(cm), -1).sum(1) / denom)
    if sample_weight is not None:
        return kappa
    return None if np.isnan(kappa[0]) else float(kappa[0])


def lins_ccc(a: Sequence[float], b: Sequence[float]) -> float:
    """Lin's concordance correlation coefficient: 2 cov / (var_a + var_b + (mean_a - mean_b)^2)."""
    x, y = _pair(a, b)
    sxy = float(np.mean((x - x.mean()) * (y - y.mean())))
    denom = float(x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    return 1.0 if denom == 0 else 2 * sxy / denom
