"""Ultrasound-style augmentation (albumentations) on uint8 ``(S, S)`` images.

Speckle (multiplicative noise), gain/TGC-like depth-dependent brightness bands, gamma, blur,
small rotations/shifts/scales, horizontal flip and depth crops (the far field cut off and the image
resized back). Seeded for reproducibility; no I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TGCBands", "build_us_augment"]


class TGCBands:
    """Depth-dependent gain: multiplies rows by a smooth random curve (time-gain-compensation drift)."""

    def __init__(self, max_gain: float = 0.25, n_knots: int = 4, p: float = 0.5) -> None:
        if not 0 <= max_gain < 1:
            raise ValueError(f"max_gain must be in [0, 1), got {max_gain}")
        self.max_gain, self.n_knots, self.p = max_gain, n_knots, p

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.p:
            return image
        h = image.shape[0]
        knots = 1.0 + rng.uniform(-self.max_gain, self.max_gain, self.n_knots)
        curve = np.interp(np.linspace(0, 1, h), np.linspace(0, 1, self.n_knots), knots)
        return np.clip(image.astype(np.float32) * curve[:, None], 0, 255).astype(np.uint8)


def build_us_augment(seed: int = 0) -> Any:
    """Return ``aug(image_u8) -> image_u8`` applying the ultrasound augmentation pipeline."""
    import albumentations as A

    side_cache: dict[str, int] = {}
    pipeline = A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-10, 10), p=0.7),
            A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.5),
            A.RandomGamma(gamma_limit=(80, 125), p=0.4),
            A.GaussianBlur(blur_limit=(3, 5), p=0.2),
            A.MultiplicativeNoise(multiplier=(0.85, 1.15), per_channel=False, elementwise=True, p=0.4),
        ],
        seed=seed,
    )
    tgc = TGCBands()
    rng = np.random.default_rng(seed)

    def augment(image: np.ndarray) -> np.ndarray:
        import cv2

        side_cache.setdefault("h", image.shape[0])
        out = pipeline(image=image)["image"]
        out = tgc(out, rng)
        if rng.random() < 0.3:  # depth crop: drop up to 20 % of the far field, resize back
            h, w = out.shape
            keep = int(h * rng.uniform(0.8, 1.0))
            out = cv2.resize(out[:keep], (w, h), interpolation=cv2.INTER_LINEAR)
        return out

    return augment
