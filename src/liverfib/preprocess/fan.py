"""Ultrasound fan (sector) detection: where the image holds echoes, as opposed to the frame.

The fan is found without learning: smooth the image, threshold a little above the background level
read from the image border, keep the largest connected component, fill it and take its convex hull.
Burned-in text, rulers and logos lie outside the hull and are what :func:`find_overlay_text` counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FanGeometry", "detect_fan", "find_overlay_text", "to_uint8"]


@dataclass(frozen=True)
class FanGeometry:
    """The detected fan of a 2D ultrasound image.

    Attributes:
        mask: ``(H, W)`` bool, True inside the fan.
        bbox: ``(row0, col0, row1, col1)`` of the fan, end-exclusive.
        area_fraction: fan pixels / image pixels.
        background_level: gray level of the frame outside the fan.
        top_width_fraction: width of the fan's top rows over its widest row (≈0 for a sector
            probe apex, ≈1 for a linear probe); a geometry fingerprint of the device.
    """

    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    area_fraction: float
    background_level: float
    top_width_fraction: float


def to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    a = array.astype(np.float32)
    lo, hi = float(np.min(a)), float(np.max(a))
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return ((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def detect_fan(array: np.ndarray, *, margin: float = 6.0, min_area_fraction: float = 0.05) -> FanGeometry:
    """Detect the ultrasound fan of a gray ``(H, W)`` image.

    Args:
        array: gray image, any numeric dtype.
        margin: gray levels above the background that count as echo.
        min_area_fraction: if the largest component is smaller than this, the whole image is
            taken as the fan (e.g. images already cropped to the fan).
    """
    import cv2

    img = to_uint8(array)
    h, w = img.shape
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    background = float(np.median(border))
    smooth = cv2.GaussianBlur(img, (0, 0), sigmaX=max(1.0, min(h, w) / 160))
    binary = (smooth > background + margin).astype(np.uint8)
    k = max(3, int(round(min(h, w) / 60)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, kernel)
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if n <= 1 or stats[1:, cv2.CC_STAT_AREA].max() < min_area_fraction * h * w:
        mask = np.ones((h, w), bool)
    else:
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        comp = (labels == largest).astype(np.uint8)
        contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull = cv2.convexHull(np.concatenate(contours))
        filled = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(filled, hull, 1)
        mask = filled.astype(bool)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    bbox = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    widths = mask.sum(axis=1)
    fan_h = bbox[2] - bbox[0]
    top = widths[bbox[0] : bbox[0] + max(1, fan_h // 20)].mean()
    top_width_fraction = float(top / max(1, widths.max()))
    return FanGeometry(
        mask=mask,
        bbox=bbox,
        area_fraction=float(mask.mean()),
        background_level=background,
        top_width_fraction=top_width_fraction,
    )


def find_overlay_text(array: np.ndarray, fan: FanGeometry, *, level: int = 180) -> float:
    """Fraction of pixels outside the fan that are bright (burned-in text, rulers, logos).

    Returns a value in [0, 1]; 0 means a clean frame.
    """
    img = to_uint8(array)
    outside = ~fan.mask
    n_out = int(outside.sum())
    if n_out == 0:
        return 0.0
    return float(np.count_nonzero(img[outside] >= level) / n_out)
