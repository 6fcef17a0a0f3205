"""Mask post-processing: keep the largest connected component, drop small ones."""

from __future__ import annotations

import numpy as np

__all__ = ["largest_component", "remove_small_components"]


def _components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return n, labels, stats[:, cv2.CC_STAT_AREA]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected foreground component of a 2D bool mask (empty stays empty)."""
    n, labels, areas = _components(mask)
    if n <= 1:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(areas[1:]))


def remove_small_components(mask: np.ndarray, min_fraction: float = 0.01) -> np.ndarray:
    """Drop components smaller than ``min_fraction`` of the image area."""
    n, labels, areas = _components(mask)
    keep = [i for i in range(1, n) if areas[i] >= min_fraction * mask.size]
    return np.isin(labels, keep)
