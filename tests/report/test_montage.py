"""QC montage of a 3D mask: slices inside the mask, an outline drawn where the mask is."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from liverfib.report.montage import montage_slices, write_mask_montage


def _red_pixels(path: Path) -> int:
    bgr = cv2.imread(str(path))
    b, g, r = (bgr[..., i].astype(int) for i in range(3))
    return int(((r > 200) & (g < 90) & (b < 90)).sum())


def test_slices_lie_inside_the_mask() -> None:
    mask = np.zeros((20, 30, 40), np.uint8)
    mask[5:10, 12:20, 25:35] = 1
    picks = montage_slices(mask, 3)
    assert all(5 <= k < 10 for k in picks["axial"]) and len(picks["axial"]) == 3
    assert all(12 <= k < 20 for k in picks["coronal"]) and all(25 <= k < 35 for k in picks["sagittal"])
    assert montage_slices(np.zeros_like(mask), 3)["axial"] == [5, 10, 14]  # empty mask: across the volume


def test_outline_drawn_only_where_there_is_a_mask(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    volume = rng.normal(0, 1, (20, 30, 40)).astype(np.float32)
    mask = np.zeros(volume.shape, np.uint8)
    mask[5:10, 12:20, 25:35] = 1
    with_mask = write_mask_montage(volume, mask, tmp_path / "a.png", spacing_mm=(2.0, 1.0, 1.0), volume_ml=0.8,
                                   title="case")
    without = write_mask_montage(volume, np.zeros_like(mask), tmp_path / "b.png", spacing_mm=(2.0, 1.0, 1.0),
                                 volume_ml=0.0, title="case")
    # the legend's red line is in both; nine panels of outline only where the mask is
    assert _red_pixels(with_mask) > _red_pixels(without) + 200
