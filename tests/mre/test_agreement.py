"""Agreement statistics against independent numpy/scipy/sklearn computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from liverfib.errors import InputError
from liverfib.evaluation.agreement import bland_altman, icc, kappa_from_codes, pearson_ci
from liverfib.mre.agreement import mask_agreement, stage_agreement

RNG = np.random.default_rng(0)
TRUTH = RNG.uniform(2, 7, 40)
AUTO = TRUTH * 1.03 + RNG.normal(0, 0.15, 40)


def test_pearson_with_fisher_ci():
    res = pearson_ci(AUTO, TRUTH)
    r = np.corrcoef(AUTO, TRUTH)[0, 1]
    z, se = np.arctanh(r), 1 / math.sqrt(37)
    assert res["r"] == pytest.approx(r)
    assert res["ci_low"] == pytest.approx(np.tanh(z - 1.959964 * se), abs=1e-6)
    assert res["ci_high"] == pytest.approx(np.tanh(z + 1.959964 * se), abs=1e-6)
    # scipy's own confidence interval uses the same Fisher transform
    ci = stats.pearsonr(AUTO, TRUTH).confidence_interval(0.95)
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-9)


def _icc_by_regression(a, b):
    """ICCs from a two-way ANOVA fitted by least squares (subjects + raters dummies)."""
    y = np.concatenate([a, b])
    n = len(a)
    subj = np.tile(np.eye(n), (2, 1))
    rater = np.concatenate([np.zeros(n), np.ones(n)])[:, None]
    full = np.hstack([subj, rater])
    resid = y - full @ np.linalg.lstsq(full, y, rcond=None)[0]
    mse = resid @ resid / (n - 1)
    msr = 2 * np.var((a + b) / 2, ddof=0) * n / (n - 1)
    msc = n * ((a.mean() - y.mean()) ** 2 + (b.mean() - y.mean()) ** 2)
    return (msr - mse) / (msr + mse + 2 * (msc - mse) / n), (msr - mse) / (msr + mse)


def _both_forms(a, b):
    return {f"icc{f[0]}_1": icc(np.column_stack([a, b]), form=f) for f in ("2,1", "3,1")}


def test_icc_matches_anova_by_regression_and_cis_bracket():
    res = _both_forms(AUTO, TRUTH)
    icc2, icc3 = _icc_by_regression(AUTO, TRUTH)
    assert res["icc2_1"]["icc"] == pytest.approx(icc2, rel=1e-9)
    assert res["icc3_1"]["icc"] == pytest.approx(icc3, rel=1e-9)
    assert icc2 < icc3  # the systematic 3 % bias costs absolute agreement only
    for k in ("icc2_1", "icc3_1"):
        assert res[k]["ci_low"] < res[k]["icc"] < res[k]["ci_high"] <= 1
    wide = icc(np.column_stack([AUTO[:8], TRUTH[:8]]), form="3,1")
    assert wide["ci_high"] - wide["ci_low"] > res["icc3_1"]["ci_high"] - res["icc3_1"]["ci_low"]


def test_bland_altman_by_hand():
    res = bland_altman(AUTO, TRUTH)["kpa"]
    d = AUTO - TRUTH
    sd = d.std(ddof=1)
    assert res["bias"] == pytest.approx(d.mean())
    assert res["loa_low"] == pytest.approx(d.mean() - 1.959964 * sd, abs=1e-6)
    assert res["loa_high"] == pytest.approx(d.mean() + 1.959964 * sd, abs=1e-6)
    t = stats.t.ppf(0.975, 39)
    assert res["bias_ci_high"] - res["bias"] == pytest.approx(t * sd / math.sqrt(40))
    assert res["loa_high_ci_high"] - res["loa_high"] == pytest.approx(t * math.sqrt(3 * sd**2 / 40))


def test_stage_kappa_and_f1():
    from sklearn.metrics import cohen_kappa_score

    a = ["F0", "F1", "F2", "F3", "F4"] * 4
    b = list(a)
    b[0], b[7] = "F1", "F3"
    res = stage_agreement(a, b, n_boot=300)
    assert res["kappa"]["value"] == pytest.approx(cohen_kappa_score(a, b))
    assert res["kappa_quadratic"]["value"] == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"))
    assert res["kappa"]["ci_low"] <= res["kappa"]["value"] <= res["kappa"]["ci_high"]
    assert res["percent_agreement"] == pytest.approx(90.0)
    assert stage_agreement(a, a, n_boot=50)["kappa"]["value"] == 1.0
    # the vectorised kappa of the bootstrap equals scikit-learn's
    rng = np.random.default_rng(3)
    for _ in range(5):
        x, y = rng.integers(0, 5, 30), rng.integers(0, 5, 30)
        y[:15] = x[:15]
        for w in (None, "quadratic"):
            assert kappa_from_codes(x, y, 5, w) == pytest.approx(cohen_kappa_score(x, y, labels=range(5), weights=w))
    with pytest.raises(InputError, match="unknown stage"):
        stage_agreement(["F0", "F9"], ["F0", "F1"])


def test_mask_summary_and_input_errors():
    rows = [{"stage": s, "dice": d, "iou": d / (2 - d)} for s, d in [("F0", 0.9), ("F0", 0.8), ("F2", 0.95)]]
    res = mask_agreement(rows, n_boot=200)
    assert res["overall"]["dice"] == pytest.approx(np.mean([0.9, 0.8, 0.95]))
    assert res["per_stage"]["F0"]["dice"] == pytest.approx(0.85) and set(res["per_stage"]) == {"F0", "F2"}
    with pytest.raises(InputError, match="at least 3"):
        pearson_ci([1, 2], [1, 2])
    with pytest.raises(InputError, match="NaN"):
        icc(np.column_stack([[1, 2, np.nan], [1, 2, 3]]))
