"""Phantom ROIs: the reader-style ROI that defines the truth (from the true labels, scipy only) and a
simulated reader's manual ROI (read from the confidence map, as a person would)."""

from __future__ import annotations

import numpy as np

from liverfib.mre.phantom.anatomy import FISSURE, LIVER, VESSEL, grid

#: The reader-style ROI that defines the truth (documented in BENCHMARKS.md, see :func:`reader_roi`).
READER_ROI_RULE = (
    "true liver parenchyma (liver label of the slab centre; vessels and the fissure are not parenchyma), "
    "minus a 3-pixel (4.8 mm, city-block) band inside the liver outline (capsule; the outline encloses the "
    "liver's own vessels and holes), minus a 2-pixel (3.2 mm) band "
    "around every vessel and the fissure; no confidence map; mean of the noise-free stiffness field "
    "over all ROI pixels of all slices"
)


def reader_roi(labels: np.ndarray) -> np.ndarray:
    """The truth ROI ``(D, H, W)`` bool from true labels ``(D, H, W)``: see :data:`READER_ROI_RULE`.

    Written here with scipy.ndimage only, so that the truth never comes from the code under test.
    """
    from scipy.ndimage import binary_dilation, binary_erosion, binary_fill_holes

    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
    out = np.zeros(labels.shape, bool)
    for z, lab in enumerate(labels):
        vessels = np.isin(lab, (VESSEL, FISSURE))
        organ = binary_fill_holes((lab == LIVER) | (vessels & binary_dilation(lab == LIVER, cross, 2)))
        inner = binary_erosion(organ, cross, iterations=3, border_value=0)
        near_vessel = binary_dilation(vessels, cross, iterations=2)
        out[z] = inner & (lab == LIVER) & ~near_vessel
    return out


def draw_manual_roi(labels: np.ndarray, conf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A simulated reader's ROI: smooth, inside the liver, away from low confidence, some omissions."""
    from scipy.ndimage import binary_erosion, binary_opening, label

    margin = int(rng.integers(2, 6))
    smooth = int(rng.integers(3, 6))
    conf_seen = float(np.clip(95 + rng.normal(0, 1.5), 92.0, 97.0))  # how strictly the 95 % limit is followed
    yy, xx = grid()
    out = np.zeros(labels.shape, bool)
    st = np.ones((3, 3), bool)
    for z, lab in enumerate(labels):
        liver = binary_erosion(lab == LIVER, st, iterations=margin)
        allowed = liver & (conf[z] >= conf_seen)
        roi = binary_opening(allowed, st, iterations=smooth)
        if not roi.any():  # too little left for a smooth outline: the reader traces what is allowed
            roi = allowed
        if roi.any():  # the reader covers a part of the liver (an ellipse around a chosen spot)
            ys, xs = np.nonzero(roi)
            k = int(rng.integers(len(ys)))
            ry, rx = rng.uniform(20, 55), rng.uniform(20, 55)
            roi &= ((yy - ys[k]) / ry) ** 2 + ((xx - xs[k]) / rx) ** 2 <= 1
        comps, n = label(roi)
        if n > 1:  # readers draw one or two contiguous regions, not speckle
            sizes = np.bincount(comps.ravel())[1:]
            keep = np.argsort(sizes)[::-1][:2] + 1
            roi = np.isin(comps, keep)
        out[z] = roi
    return out
