"""Ultrasound augmentation: seeded, shape- and dtype-preserving."""

from __future__ import annotations

import numpy as np
import pytest

from liverfib.preprocess.augment import TGCBands, build_us_augment


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(6)]


def test_same_seed_same_output(images: list[np.ndarray]) -> None:
    a, b = build_us_augment(seed=3), build_us_augment(seed=3)
    for img in images:
        np.testing.assert_array_equal(a(img), b(img))


def test_different_seeds_differ(images: list[np.ndarray]) -> None:
    a, b = build_us_augment(seed=1), build_us_augment(seed=2)
    assert any(not np.array_equal(a(img), b(img)) for img in images)


def test_keeps_shape_and_dtype_and_changes_something(images: list[np.ndarray]) -> None:
    aug = build_us_augment(seed=0)
    outs = [aug(img) for img in images]
    for out, img in zip(outs, images, strict=True):
        assert out.shape == img.shape
        assert out.dtype == np.uint8
    assert any(not np.array_equal(o, i) for o, i in zip(outs, images, strict=True))


def test_tgc_bands_scale_rows_smoothly() -> None:
    img = np.full((64, 8), 100, np.uint8)
    out = TGCBands(max_gain=0.25, p=1.0)(img, np.random.default_rng(0))
    assert out.dtype == np.uint8
    rows = out[:, 0].astype(float)
    assert (out == out[:, :1]).all()  # each row multiplied by one gain
    assert rows.min() >= 75 - 1 and rows.max() <= 125
    assert np.abs(np.diff(rows)).max() <= 3  # smooth along depth
    assert TGCBands(p=0.0)(img, np.random.default_rng(0)) is img


def test_tgc_rejects_bad_gain() -> None:
    with pytest.raises(ValueError, match="max_gain"):
        TGCBands(max_gain=1.0)
