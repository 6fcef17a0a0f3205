"""CAMs (pytorch-grad-cam), statistics, pseudo-masks and ROAD faithfulness."""

from __future__ import annotations

import numpy as np
import pytest

from liverfib.errors import ConfigError
from liverfib.explain import cam_statistics, cam_to_mask, compute_cams
from liverfib.explain.faithfulness import random_maps, road_scores
from liverfib.explain.pseudo_masks import parse_threshold
from liverfib.inference.predictor import load_predictor


@pytest.fixture(scope="module")
def predictor(trained_run):
    return load_predictor(trained_run.checkpoint)


@pytest.fixture(scope="module")
def images(make_us_image):
    rng = np.random.default_rng(5)
    return [make_us_image(rng, "A"), make_us_image(rng, "B")]


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam"])
def test_cams_live_in_input_coordinates(predictor, images, method) -> None:
    cams = compute_cams(predictor, images, method=method)
    for a, c in zip(images, cams, strict=True):
        assert c.heatmap.shape == a.shape
        assert c.heatmap.min() >= 0 and c.heatmap.max() <= 1 and c.heatmap.max() > 0.5
        assert c.target in predictor.classes
        assert c.probability == pytest.approx(max(c.probabilities.values()))


def test_fixed_target_and_final_layer(predictor, images) -> None:
    cams = compute_cams(predictor, images[:1], target="F3", layers="final")
    assert cams[0].target == "F3"
    assert cams[0].probability == pytest.approx(cams[0].probabilities["F3"])


def test_bad_choices_list_the_valid_ones(predictor, images) -> None:
    with pytest.raises(ConfigError, match="gradcam"):
        compute_cams(predictor, images, method="gradkam")
    with pytest.raises(ConfigError, match="F4"):
        compute_cams(predictor, images, target="F9")


def test_statistics_on_a_hand_made_map() -> None:
    h = np.zeros((10, 10), np.float32)
    h[:, :5] = 1.0
    fan = np.zeros((10, 10), bool)
    fan[:, :5] = True
    liver = np.zeros((10, 10), bool)
    liver[:5, :] = True
    s = cam_statistics(h, fan_mask=fan, liver_mask=liver)
    assert s["mass_in_fan"] == 1.0 and s["mass_in_liver"] == 0.5 and s["area_above_0_5"] == 0.5


def test_pseudo_mask_thresholds_and_fan_restriction() -> None:
    yy, xx = np.mgrid[0:100, 0:100]
    h = np.exp(-((yy - 50) ** 2 + (xx - 50) ** 2) / (2 * 15.0**2)).astype(np.float32)
    fan = np.ones((100, 100), bool)
    fan[:, 60:] = False
    fixed = cam_to_mask(h, fan, "0.5")
    assert fixed.any() and not fixed[:, 60:].any()
    assert cam_to_mask(h, None, "0.9").sum() < cam_to_mask(h, None, "0.5").sum()
    p80 = cam_to_mask(h, None, "p80")
    assert abs(p80.mean() - 0.2) < 0.03
    assert cam_to_mask(h, None, "otsu").any()
    for bad in ("1.5", "p100", "median"):
        with pytest.raises(ConfigError, match="otsu"):
            parse_threshold(bad)


def test_road_scores_are_finite_and_random_maps_normalised(predictor, images) -> None:
    r = random_maps(3, 32)
    assert r.shape == (3, 32, 32) and r.min() == 0 and r.max() == pytest.approx(1)
    scores = road_scores(predictor, images, compute_cams(predictor, images))
    assert set(scores) == {"road_cam", "road_random", "road_gain"}
    assert all(np.isfinite(v).all() and v.shape == (2,) for v in scores.values())
