"""Fan (sector) detection and burned-in text on synthetic B-mode images of two devices."""

from __future__ import annotations

import io

import numpy as np
import pytest

from liverfib.preprocess.fan import detect_fan, find_overlay_text


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("kind", ["A", "B"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fan_mask_matches_the_sector(make_us_image, us_frame, kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = make_us_image(rng, kind, texture=float(rng.uniform(2.0, 8.0)))
    truth = us_frame.sector_mask(kind)

    fan = detect_fan(img)

    assert fan.mask.shape == img.shape and fan.mask.dtype == bool
    assert _iou(fan.mask, truth) > 0.9
    np.testing.assert_allclose(fan.bbox, us_frame.sector_bbox(kind), atol=3)
    assert fan.area_fraction == pytest.approx(truth.mean(), abs=0.08)  # hull fills the top arc
    assert fan.background_level == us_frame.devices[kind].background


def test_fan_survives_jpeg_encoding(make_us_image, us_frame) -> None:
    from PIL import Image as PILImage

    img = make_us_image(np.random.default_rng(5), "A")
    decoded = np.asarray(PILImage.open(io.BytesIO(us_frame.encode(img, "JPEG", quality=80))))

    fan = detect_fan(decoded)

    assert _iou(fan.mask, us_frame.sector_mask("A")) > 0.9
    np.testing.assert_allclose(fan.bbox, us_frame.sector_bbox("A"), atol=3)


def test_top_width_fraction_tells_the_devices_apart(make_us_image) -> None:
    rng = np.random.default_rng(3)
    sector = detect_fan(make_us_image(rng, "A")).top_width_fraction  # narrow apex
    curvilinear = detect_fan(make_us_image(rng, "B")).top_width_fraction  # wide top arc
    assert 0.0 < sector < 0.3 < curvilinear < 0.6


@pytest.mark.parametrize(("kind", "text"), [("A", "LIVER 5C 12cm"), ("B", "C5-1")])
def test_overlay_text_outside_the_fan_is_found(make_us_image, us_frame, kind: str, text: str) -> None:
    clean = make_us_image(np.random.default_rng(7), kind)
    marked = make_us_image(np.random.default_rng(7), kind, text=text)
    text_pixels = (marked == 255) & ~us_frame.sector_mask(kind)
    assert text_pixels.sum() > 10  # the fixture did draw it

    fan_clean, fan_marked = detect_fan(clean), detect_fan(marked)

    assert find_overlay_text(clean, fan_clean) < 1e-4
    outside = (~fan_marked.mask).sum()
    assert find_overlay_text(marked, fan_marked) == pytest.approx(text_pixels.sum() / outside, rel=0.2)
    # the text is not swallowed by the fan
    assert not fan_marked.mask[text_pixels].any()
    assert _iou(fan_marked.mask, us_frame.sector_mask(kind)) > 0.9


def test_overlay_level_is_respected(make_us_image) -> None:
    img = make_us_image(np.random.default_rng(8), "A", text="LIVER")
    fan = detect_fan(img)
    assert find_overlay_text(img, fan, level=256) == 0.0
    assert find_overlay_text(img, fan, level=255) > 0.0


@pytest.mark.parametrize("grain", [0.7, 2.0, 4.0])
def test_uniform_texture_falls_back_to_the_whole_image(grain: float) -> None:
    """An image already cropped to the fan (speckle everywhere) has no frame: all of it is fan."""
    import cv2

    rng = np.random.default_rng(0)
    speckle = cv2.GaussianBlur(rng.rayleigh(1.0, (90, 120)).astype(np.float32), (0, 0), grain)
    img = np.clip(speckle / speckle.mean() * 100, 0, 255).astype(np.uint8)

    fan = detect_fan(img)

    assert fan.mask.all()
    assert fan.bbox == (0, 0, 90, 120)
    assert fan.area_fraction == 1.0
    assert find_overlay_text(img, fan) == 0.0


@pytest.mark.parametrize("value", [0, 128])
def test_constant_image_is_all_fan(value: int) -> None:
    fan = detect_fan(np.full((40, 50), value, np.uint8))
    assert fan.mask.all() and fan.bbox == (0, 0, 40, 50)


def test_small_blob_is_below_min_area_and_falls_back() -> None:
    img = np.zeros((100, 100), np.uint8)
    img[40:50, 40:50] = 120  # 1 % of the image, below min_area_fraction=0.05
    assert detect_fan(img).mask.all()
    fan = detect_fan(img, min_area_fraction=0.005)
    assert fan.area_fraction < 0.05
    np.testing.assert_allclose(fan.bbox, (40, 40, 50, 50), atol=2)


def test_non_uint8_input_is_rescaled(make_us_image, us_frame) -> None:
    img = make_us_image(np.random.default_rng(9), "B")
    as_u16 = img.astype(np.uint16) * 257 + 1000
    fan = detect_fan(as_u16)
    assert _iou(fan.mask, us_frame.sector_mask("B")) > 0.9
