"""ICC robustness filter, selection, nested grouped CV and leakage-free stacking."""

from __future__ import annotations

import numpy as np
import pytest

from liverfib.errors import InputError
from liverfib.evaluation.agreement import icc
from liverfib.image import Image
from liverfib.radiomics import RadiomicsConfig
from liverfib.radiomics.robustness import feature_robustness, perturb, robust_features


def test_icc_matches_shrout_fleiss_example() -> None:
    # Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges; ICC(2,1) = 0.29
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    assert icc(ratings)["icc"] == pytest.approx(0.2898, abs=5e-4)
    assert icc(np.repeat(np.arange(6.0)[:, None], 3, axis=1))["icc"] == pytest.approx(1.0)
    with pytest.raises(InputError, match="n_subjects"):
        icc(np.ones((1, 3)))


def test_filter_drops_a_deliberately_unstable_feature() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=30)
    stable = truth[:, None] + 0.05 * rng.normal(size=(30, 4))  # agrees across the 4 perturbations
    unstable = rng.normal(size=(30, 4))  # changes arbitrarily with every perturbation
    cube = np.stack([stable, unstable], axis=2)
    icc_ = dict(zip(["stable", "unstable"], icc(cube, level=None)["icc"], strict=True))
    assert icc_["stable"] > 0.95 and icc_["unstable"] < 0.3
    assert robust_features(icc_, 0.75) == ["stable"]


def _textured(mean: float, seed: int) -> tuple[Image, np.ndarray]:
    rng = np.random.default_rng(seed)
    arr = np.clip(mean + 12 * rng.normal(size=(48, 48)), 0, 255).astype(np.float32)
    mask = np.zeros(arr.shape, bool)
    mask[8:40, 8:40] = True
    return Image(arr), mask


def test_perturbations_and_real_icc() -> None:
    image, mask = _textured(100.0, 0)
    _, eroded = perturb(image, mask, "erode", radius_px=2)
    _, dilated = perturb(image, mask, "dilate", radius_px=2)
    noisy, _ = perturb(image, mask, "noise", noise_fraction=0.1)
    assert eroded.sum() == 28 * 28 and dilated.sum() > mask.sum()
    assert not np.array_equal(noisy.array, image.array)
    pairs = [_textured(m, s) for s, m in enumerate([40.0, 80.0, 120.0, 160.0, 200.0])]
    icc_ = feature_robustness(pairs, RadiomicsConfig(feature_classes=("firstorder",)))
    # the ROI mean tracks the image's brightness under every perturbation
    assert icc_["original_firstorder_Mean"] > 0.95


def _toy(n: int = 150, informative: bool = True, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n // 3), 3)  # clusters of 3 near-duplicates
    y = np.repeat(rng.integers(0, 3, n // 3), 3)
    X = rng.normal(size=(n, 12))
    if informative:
        X[:, 0] += 1.5 * y
        X[:, 1] = X[:, 0] * 0.99 + 0.01 * rng.normal(size=n)  # near-copy: the correlation filter drops it
    folds = (groups % 5).astype(int)
    return X, y, groups, folds


def test_correlation_filter_and_pipeline_selection() -> None:
    from liverfib.radiomics.models import build_pipeline

    X, y, _, _ = _toy()
    pipe = build_pipeline("lr").fit(X, y)
    support = pipe.named_steps["corr"].get_support()
    assert support[0] and not support[1]
    from liverfib.radiomics.explain import selected_feature_names

    names = [f"original_firstorder_F{i}" for i in range(12)]
    sel = selected_feature_names(pipe, names)
    assert "original_firstorder_F0" in sel and "original_firstorder_F1" not in sel


@pytest.mark.parametrize("model", ["lr", "svm"])
def test_nested_cv_learns_signal_out_of_fold(model: str) -> None:
    from liverfib.radiomics.models import nested_cv, radiomics_learner

    X, y, groups, folds = _toy()
    res = nested_cv(radiomics_learner(model), X, y, groups, folds, 3)
    probs = res["probs"]
    assert probs.shape == (150, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == y).mean() > 0.6  # chance is ~0.33
    assert len(res["params"]) == 5


@pytest.mark.parametrize("model", ["rf", "gb"])
def test_tree_models_fit_held_out_groups(model: str) -> None:
    from threadpoolctl import threadpool_limits

    from liverfib.radiomics.models import build_pipeline

    X, y, _, folds = _toy()
    train, test = folds != 0, folds == 0
    with threadpool_limits(1):  # OpenMP over 2 busy cores is slower than one thread
        pipe = build_pipeline(model).fit(X[train], y[train])
    assert (pipe.predict(X[test]) == y[test]).mean() > 0.6


def test_lasso_keeps_one_feature_when_the_penalty_zeroes_all() -> None:
    from liverfib.radiomics.selection import LassoSelector

    X, y, _, _ = _toy(informative=False)
    sel = LassoSelector(C=1e-4).fit(X, y)
    assert sel.fallback_ and sel.transform(X).shape == (150, 1)


def test_stacking_is_leakage_free_on_random_labels() -> None:
    """Pure-noise features and labels: a leaky stacker would score above chance; this one must not."""
    from liverfib.radiomics.fusion import nested_stacking
    from liverfib.radiomics.models import linear_learner, radiomics_learner

    X, y, groups, folds = _toy(n=180, informative=False, seed=1)
    rng = np.random.default_rng(5)
    res = nested_stacking(
        {
            "rad": (X, radiomics_learner("lr")),
            "dl": (rng.normal(size=(180, 20)), linear_learner([0.01, 1.0])),
        },
        y,
        groups,
        folds,
        3,
    )
    acc = (res["fusion"].argmax(axis=1) == y).mean()
    assert acc < 0.5
    assert np.isfinite(res["fusion"]).all() and set(res["base"]) == {"rad", "dl"}


def test_stacking_combines_complementary_blocks() -> None:
    from liverfib.radiomics.fusion import nested_stacking
    from liverfib.radiomics.models import linear_learner

    rng = np.random.default_rng(2)
    n = 180
    groups = np.repeat(np.arange(n // 3), 3)
    y = np.repeat(rng.integers(0, 3, n // 3), 3)
    a = rng.normal(size=(n, 4))
    b = rng.normal(size=(n, 4))
    a[:, 0] += 1.2 * (y == 1)  # block a tells class 1 apart
    b[:, 0] += 1.2 * (y == 2)  # block b tells class 2 apart
    folds = groups % 5
    res = nested_stacking(
        {"a": (a, linear_learner([1.0])), "b": (b, linear_learner([1.0]))}, y, groups, folds, 3
    )
    accs = {k: (v.argmax(axis=1) == y).mean() for k, v in {**res["base"], "fusion": res["fusion"]}.items()}
    assert accs["fusion"] > max(accs["a"], accs["b"])
