"""UltrasoundPreprocess: shape/dtype, ImageNet normalisation, fan masking of burned-in text."""

from __future__ import annotations

import numpy as np
import pytest

from liverfib.errors import ConfigError
from liverfib.preprocess.transforms import IMAGENET_MEAN, IMAGENET_STD, PreprocessConfig, UltrasoundPreprocess


@pytest.mark.parametrize("kind", ["A", "B"])
@pytest.mark.parametrize("side", [32, 64])
def test_output_is_three_channel_float32(make_us_image, kind: str, side: int) -> None:
    img = make_us_image(np.random.default_rng(0), kind)
    out = UltrasoundPreprocess(PreprocessConfig(img_size=side))(img)
    assert out.shape == (3, side, side)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()


def test_normalisation_uses_imagenet_statistics() -> None:
    pre = UltrasoundPreprocess(PreprocessConfig(img_size=32))
    out = pre.normalise(np.array([[0, 255]], np.uint8))
    for c in range(3):
        assert out[c, 0, 0] == pytest.approx(-IMAGENET_MEAN[c] / IMAGENET_STD[c], rel=1e-5)
        assert out[c, 0, 1] == pytest.approx((1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], rel=1e-5)


@pytest.mark.parametrize("crop", [False, True])
def test_fan_masking_removes_burned_in_text(make_us_image, crop: bool) -> None:
    clean = make_us_image(np.random.default_rng(4), "A")
    marked = make_us_image(np.random.default_rng(4), "A", text="LIVER 5C 12cm")
    assert not np.array_equal(clean, marked)

    masked = UltrasoundPreprocess(PreprocessConfig(img_size=64, fan_crop=crop))
    np.testing.assert_array_equal(masked.geometry(marked), masked.geometry(clean))
    np.testing.assert_array_equal(masked(marked), masked(clean))

    raw = UltrasoundPreprocess(PreprocessConfig(img_size=64, fan_mask=False, fan_crop=False))
    assert not np.array_equal(raw.geometry(marked), raw.geometry(clean))


def test_masked_text_pixels_are_zero(make_us_image) -> None:
    clean = make_us_image(np.random.default_rng(4), "A")
    marked = make_us_image(np.random.default_rng(4), "A", text="LIVER 5C 12cm")
    h, w = marked.shape
    rows, cols = np.nonzero(marked != clean)
    side = 80
    out = UltrasoundPreprocess(PreprocessConfig(img_size=side, fan_crop=False)).geometry(marked)
    assert out.shape == (side, side) and out.dtype == np.uint8
    assert out[rows * side // h, cols * side // w].max() == 0
    unmasked = UltrasoundPreprocess(PreprocessConfig(img_size=side, fan_mask=False, fan_crop=False))
    assert unmasked.geometry(marked)[rows * side // h, cols * side // w].max() > 100


def test_fan_crop_fills_the_frame(make_us_image) -> None:
    img = make_us_image(np.random.default_rng(6), "B")
    cropped = UltrasoundPreprocess(PreprocessConfig(img_size=64)).geometry(img)
    full = UltrasoundPreprocess(PreprocessConfig(img_size=64, fan_crop=False)).geometry(img)
    # the fan's bounding box is most of the cropped frame, less of the uncropped one
    assert (cropped > 0).mean() > (full > 0).mean()


@pytest.mark.parametrize("kw", [{"img_size": 16}, {"img_size": 2048}, {"nlm_h": 0.0}])
def test_config_rejects_bad_values(kw: dict) -> None:
    with pytest.raises(ConfigError):
        PreprocessConfig(**kw)


def test_config_is_frozen_and_round_trips() -> None:
    cfg = PreprocessConfig(img_size=96, nlm=True)
    assert PreprocessConfig(**cfg.to_dict()) == cfg
    with pytest.raises(AttributeError):
        cfg.img_size = 64  # type: ignore[misc]


def test_nlm_denoising_keeps_shape_and_smooths(make_us_image) -> None:
    img = make_us_image(np.random.default_rng(2), "A")
    plain = UltrasoundPreprocess(PreprocessConfig(img_size=64, fan_crop=False)).geometry(img)
    smooth = UltrasoundPreprocess(PreprocessConfig(img_size=64, fan_crop=False, nlm=True, nlm_h=15.0))
    out = smooth.geometry(img)
    assert out.shape == plain.shape and out.dtype == np.uint8
    inside = plain > 0
    assert (
        np.abs(np.diff(out.astype(float), axis=1))[inside[:, 1:]].mean()
        < np.abs(np.diff(plain.astype(float), axis=1))[inside[:, 1:]].mean()
    )
