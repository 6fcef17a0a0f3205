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


class _RegionNet:
    """Builds a staging-net stand-in whose class 0 looks only at the left third of the input and class 1
    only at the right third (the other classes at nothing): its final layer ``encoder.bn2`` outputs one
    channel per class, the input masked to that class's region; logit k = mean of channel k."""

    @staticmethod
    def build(size: int, n_classes: int):  # type: ignore[no-untyped-def]
        import torch

        masks = torch.zeros(n_classes, size, size)
        masks[0, :, : size // 3] = 1.0
        masks[1, :, size - size // 3 :] = 1.0

        class Masked(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.gain = torch.nn.Parameter(torch.ones(1))  # so the activations carry gradients

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.gain * masks[None] * (torch.sigmoid(x.mean(dim=1, keepdim=True)) + 0.5)

        class Net(torch.nn.Module):
            feature_stages = ()

            def __init__(self) -> None:
                super().__init__()
                self.encoder = torch.nn.Module()
                self.encoder.bn2 = Masked()

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return 10.0 * self.encoder.bn2(x).mean(dim=(2, 3))

        return Net().eval()


@pytest.fixture
def region_predictor(trained_run):  # type: ignore[no-untyped-def]
    predictor = load_predictor(trained_run.checkpoint)
    size = predictor.preprocess(np.zeros((120, 160), np.uint8)).shape[-1]
    predictor.net = _RegionNet.build(size, len(predictor.classes))
    return predictor


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam"])
def test_cam_mass_lies_where_the_decision_is_made(region_predictor, images, method) -> None:
    """The decision for F0 depends only on the left third of the input, for F1 only on the right
    third: the CAM for each target must put its mass there (and follow it back to the file's pixels)."""
    for target, side in (("F0", "left"), ("F1", "right")):
        cams = compute_cams(region_predictor, images, method=method, target=target, layers="final")
        for a, c in zip(images, cams, strict=True):
            assert c.heatmap.shape == a.shape and c.target == target
            assert c.heatmap.min() >= 0 and c.heatmap.max() <= 1 and c.heatmap.max() > 0.5
            s = c.input_heatmap.shape[-1]
            region = slice(None, s // 3) if side == "left" else slice(s - s // 3, None)
            assert c.input_heatmap[:, region].sum() / c.input_heatmap.sum() > 0.95, (method, target)
            half = slice(None, a.shape[1] // 2) if side == "left" else slice(a.shape[1] // 2, None)
            assert c.heatmap[:, half].sum() / c.heatmap.sum() > 0.9, (method, target)
            assert c.probability == pytest.approx(c.probabilities[target])


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam"])
def test_cams_live_in_input_coordinates(predictor, images, method) -> None:
    cams = compute_cams(predictor, images, method=method)
    for a, c in zip(images, cams, strict=True):
        assert c.heatmap.shape == a.shape
        assert c.heatmap.min() >= 0 and c.heatmap.max() <= 1 and c.heatmap.max() > 0.5
        assert c.target == max(c.probabilities, key=c.probabilities.get)  # the predicted stage
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
