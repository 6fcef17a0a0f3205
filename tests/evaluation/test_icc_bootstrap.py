"""The one ICC and the one bootstrap against independent hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from liverfib.errors import ConfigError, InputError
from liverfib.evaluation.agreement import icc, kappa_from_codes
from liverfib.evaluation.resampling import bootstrap

# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges. R psych::ICC(sf) prints
# ICC2 0.29 [0.019, 0.76] and ICC3 0.71 [0.34, 0.95].
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)


@pytest.mark.parametrize(("form", "value", "low", "high"), [("2,1", 0.29, 0.019, 0.76), ("3,1", 0.71, 0.34, 0.95)])
def test_icc_matches_the_shrout_fleiss_table(form: str, value: float, low: float, high: float) -> None:
    res = icc(SF, form=form)
    assert res["icc"] == pytest.approx(value, abs=0.006)
    assert res["ci_low"] == pytest.approx(low, abs=0.006)
    assert res["ci_high"] == pytest.approx(high, abs=0.006)


def test_icc_by_hand_from_anova_sums_of_squares() -> None:
    n, k = SF.shape
    grand = SF.mean()
    ss_rows = k * ((SF.mean(1) - grand) ** 2).sum()
    ss_cols = n * ((SF.mean(0) - grand) ** 2).sum()
    ss_err = ((SF - grand) ** 2).sum() - ss_rows - ss_cols  # total minus the two effects
    bms, jms, ems = ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1))
    assert icc(SF, form="3,1", level=None) == {"icc": pytest.approx((bms - ems) / (bms + (k - 1) * ems))}
    expected = (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)
    assert icc(SF, level=None)["icc"] == pytest.approx(expected)


def test_icc_of_many_features_equals_one_at_a_time_and_constant_is_zero() -> None:
    rng = np.random.default_rng(0)
    cube = rng.normal(size=(12, 3, 5))
    cube[:, :, 4] = 7.0  # a constant feature cannot tell subjects apart
    for form in ("2,1", "3,1"):
        many = icc(cube, form=form)
        for f in range(4):
            one = icc(cube[:, :, f], form=form)
            assert (many["icc"][f], many["ci_low"][f]) == pytest.approx((one["icc"], one["ci_low"]), rel=1e-12)
        assert many["icc"][4] == 0.0
    with pytest.raises(ConfigError, match="Valid choices"):
        icc(SF, form="1,1")
    with pytest.raises(InputError, match="NaN"):
        icc(np.where(SF == 10, np.nan, SF))


def _hand_group_bootstrap(values: np.ndarray, groups: list[str], n_boot: int, seed: int) -> np.ndarray:
    """Draw whole groups with replacement, one resample at a time, mean of the drawn items."""
    names = sorted(set(groups))
    members = {g: [v for v, h in zip(values, groups, strict=True) if h == g] for g in names}
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(n_boot):
        drawn = [x for i in rng.integers(0, len(names), len(names)) for x in members[names[i]]]
        means.append(sum(drawn) / len(drawn))
    return np.array(means)


def test_bootstrap_equals_a_hand_loop_and_brackets_the_mean() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(0.8, 0.1, 45)
    groups = [f"p{i % 13}" for i in range(45)]
    means = _hand_group_bootstrap(values, groups, 500, seed=3)
    ci = bootstrap(values, groups, n_boot=500, seed=3)
    assert [ci.low, ci.high] == pytest.approx(list(np.percentile(means, [2.5, 97.5])), abs=1e-12)
    assert ci.low < values.mean() < ci.high and ci.n_valid == 500
    narrow = bootstrap(values, groups, n_boot=500, seed=3, level=0.5)
    assert ci.low < narrow.low < narrow.high < ci.high


def test_bootstrap_of_kappa_by_weights_equals_resampling_rows() -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 5, 40)
    b = np.where(rng.random(40) < 0.7, a, rng.integers(0, 5, 40))
    draws = np.random.default_rng(0).integers(0, 40, size=(200, 40))
    by_rows = [cohen_kappa_score(a[i], b[i], labels=range(5), weights="quadratic") for i in draws]
    ci = bootstrap(lambda w: kappa_from_codes(a, b, 5, "quadratic", sample_weight=w), np.arange(40), n_boot=200)
    assert [ci.low, ci.high] == pytest.approx(list(np.percentile(by_rows, [2.5, 97.5])), abs=1e-12)


def test_bootstrap_skips_undefined_resamples_and_needs_enough_of_them() -> None:
    values = np.arange(10.0)

    def half_nan(w: np.ndarray) -> dict[str, np.ndarray]:
        mean = w @ values / w.sum(1)
        return {"mean": mean, "sparse": np.where(np.arange(len(w)) % 3 == 0, mean, np.nan)}

    out = bootstrap(half_nan, np.arange(10), n_boot=300, min_valid=0.5)
    assert isinstance(out, dict) and out["mean"].n_valid == 300 and out["sparse"].n_valid == 100
    assert out["sparse"].as_list() is None and out["mean"].as_list() is not None
    with pytest.raises(InputError, match="groups"):
        bootstrap(half_nan)
    with pytest.raises(ConfigError, match="n_boot"):
        bootstrap(values, n_boot=0)
