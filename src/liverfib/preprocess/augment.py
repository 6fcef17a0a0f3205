"""Ultrasound-style augmentation (albumentations) on uint8 ``(S, S)`` images.

Speckle (multiplicative noise), gain/TGC-like depth-dependent brightness bands, gamma, blur,
small rotations/shifts/scales, horizontal flip and depth crops (the far field cut off and the image
resized back). Seeded for reproducibility; no I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TGCBands", "build_us_augment", "build_us_seg_augment"]


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


def _us_transforms() -> list[Any]:
    import albumentations as A

    return [
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-10, 10), p=0.7),
        A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.5),
        A.RandomGamma(gamma_limit=(80, 125), p=0.4),
        A.GaussianBlur(blur_limit=(3, 5), p=0.2),
        A.MultiplicativeNoise(multiplier=(0.85, 1.15), per_channel=False, elementwise=True, p=0.4),
    ]


def _depth_crop(arrays: list[np.ndarray], rng: np.random.Generator, p: float = 0.3) -> list[np.ndarray]:
    """Drop up to 20 % of the far field and resize back (nearest for masks, linear for images)."""
    import cv2

    if rng.random() >= p:
        return arrays
    h, w = arrays[0].shape[:2]
    keep = int(h * rng.uniform(0.8, 1.0))
    out = [cv2.resize(arrays[0][:keep], (w, h), interpolation=cv2.INTER_LINEAR)]
    out += [cv2.resize(a[:keep], (w, h), interpolation=cv2.INTER_NEAREST) for a in arrays[1:]]
    return out


def build_us_augment(seed: int = 0) -> Any:
    """Return ``aug(image_u8) -> image_u8`` applying the ultrasound augmentation pipeline."""
    import albumentations as A

    pipeline = A.Compose(_us_transforms(), seed=seed)
    tgc = TGCBands()
    rng = np.random.default_rng(seed)

    def augment(image: np.ndarray) -> np.ndarray:
        out = tgc(pipeline(image=image)["image"], rng)
        return _depth_crop([out], rng)[0]

    return augment


def build_us_seg_augment(seed: int = 0, *, strong: bool = True) -> Any:
    """Return ``aug(image_u8, mask_u8) -> (image_u8, mask_u8)``: the same pipeline applied jointly.

    ``strong`` adds what a segmenter trained on few subjects needs: larger scale/rotation range,
    elastic deformation and coarse dropout (applied to the image only).
    """
    import albumentations as A

    transforms = _us_transforms()
    if strong:
        transforms += [
            A.Affine(scale=(0.8, 1.2), rotate=(-20, 20), shear=(-8, 8), p=0.5),
            A.ElasticTransform(alpha=30, sigma=6, p=0.3),
            A.CLAHE(clip_limit=2.0, p=0.2),
            A.CoarseDropout(num_holes_range=(1, 4), hole_height_range=(0.05, 0.15),
                            hole_width_range=(0.05, 0.15), p=0.3),
        ]
    pipeline = A.Compose(transforms, seed=seed)
    tgc = TGCBands()
    rng = np.random.default_rng(seed)

    def augment(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        res = pipeline(image=image, mask=mask)
        image_out, mask_out = _depth_crop([tgc(res["image"], rng), res["mask"]], rng)
        return image_out, mask_out

    return augment
