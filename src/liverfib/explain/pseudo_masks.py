"""CAM -> binary pseudo-mask (the weakly supervised segmentation seed method).

CAM normalised to [0, 1] per image, thresholded (0.5 as published, Otsu, or a percentile
``pNN``), restricted to the ultrasound fan, components smaller than 1 % of the image dropped.
"""

from __future__ import annotations

import numpy as np

from liverfib.errors import ConfigError

__all__ = ["THRESHOLD_HELP", "parse_threshold", "cam_to_mask"]

THRESHOLD_HELP = "0..1 (fixed; 0.5 as published), 'otsu', or 'pNN' (the NN-th percentile inside the fan)"


def parse_threshold(spec: str) -> tuple[str, float]:
    """``"0.5"`` -> ("fixed", 0.5); ``"otsu"`` -> ("otsu", nan); ``"p80"`` -> ("percentile", 80)."""
    s = str(spec).strip().lower()
    if s == "otsu":
        return "otsu", float("nan")
    try:
        if s.startswith("p"):
            q = float(s[1:])
            if 0 < q < 100:
                return "percentile", q
        else:
            t = float(s)
            if 0 < t < 1:
                return "fixed", t
    except ValueError:
        pass
    raise ConfigError(f"threshold {spec!r} not understood; expected {THRESHOLD_HELP}")


def cam_to_mask(
    heatmap: np.ndarray, fan_mask: np.ndarray | None = None, threshold: str = "0.5", min_fraction: float = 0.01
) -> np.ndarray:
    """``(H, W)`` CAM -> bool pseudo-mask inside the fan."""
    from liverfib.inference.postprocess import remove_small_components

    kind, value = parse_threshold(threshold)
    h = heatmap.astype(np.float32)
    lo, hi = float(h.min()), float(h.max())
    h = (h - lo) / (hi - lo) if hi > lo else np.zeros_like(h)
    region = fan_mask if fan_mask is not None else np.ones(h.shape, bool)
    if kind == "fixed":
        t = value
    elif kind == "percentile":
        t = float(np.percentile(h[region], value)) if region.any() else 1.0
    else:
        import cv2

        u8 = (h[region] * 255).astype(np.uint8).reshape(-1, 1)
        t = float(cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0]) / 255.0 if u8.size else 1.0
    return remove_small_components((h >= t) & region, min_fraction)
