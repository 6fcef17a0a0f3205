"""Ultrasound preprocessing as callables with no I/O.

:class:`UltrasoundPreprocess` turns a gray ``(H, W)`` B-mode image into a normalised
``(3, S, S)`` float32 array: fan masking + crop (so burned-in text, rulers and device frames
cannot be learned), optional non-local-means denoising (OpenCV), resize, ImageNet normalisation.
Its settings are a frozen dataclass saved in every checkpoint, so ``predict`` preprocesses
exactly as training did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from liverfib.errors import ConfigError
from liverfib.preprocess.fan import detect_fan

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PreprocessConfig", "UltrasoundPreprocess"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of :class:`UltrasoundPreprocess` (saved in checkpoints)."""

    img_size: int = 224
    fan_mask: bool = True
    fan_crop: bool = True
    nlm: bool = False
    nlm_h: float = 7.0

    def __post_init__(self) -> None:
        if not 32 <= self.img_size <= 1024:
            raise ConfigError(f"img_size must be in [32, 1024], got {self.img_size}")
        if self.nlm_h <= 0:
            raise ConfigError(f"nlm_h must be positive, got {self.nlm_h}")

    def to_dict(self) -> dict:
        return asdict(self)


class UltrasoundPreprocess:
    """Gray ``(H, W)`` array -> ``(3, S, S)`` float32, ImageNet-normalised.

    ``geometry(array)`` exposes the intermediate uint8 ``(S, S)`` image (before normalisation) for
    augmentation, and ``normalise`` finishes it.
    """

    def __init__(self, config: PreprocessConfig | None = None) -> None:
        self.config = config or PreprocessConfig()

    def geometry(self, array: np.ndarray) -> np.ndarray:
        """Mask/crop/denoise/resize: returns uint8 ``(S, S)``."""
        import cv2

        cfg = self.config
        img = array
        if img.dtype != np.uint8:
            a = img.astype(np.float32)
            lo, hi = np.percentile(a, [0.5, 99.5])
            img = np.clip((a - lo) / max(hi - lo, 1e-6) * 255.0, 0, 255).astype(np.uint8)
        if cfg.fan_mask or cfg.fan_crop:
            fan = detect_fan(img)
            if cfg.fan_mask:
                img = np.where(fan.mask, img, 0).astype(np.uint8)
            if cfg.fan_crop:
                r0, c0, r1, c1 = fan.bbox
                img = img[r0:r1, c0:c1]
        if cfg.nlm:
            img = cv2.fastNlMeansDenoising(
                np.ascontiguousarray(img), None, h=cfg.nlm_h, templateWindowSize=7, searchWindowSize=21
            )
        return cv2.resize(img, (cfg.img_size, cfg.img_size), interpolation=cv2.INTER_AREA)

    @staticmethod
    def normalise(img_u8: np.ndarray) -> np.ndarray:
        """uint8 ``(S, S)`` -> float32 ``(3, S, S)`` with ImageNet mean/std."""
        x = img_u8.astype(np.float32) / 255.0
        mean = np.asarray(IMAGENET_MEAN, np.float32)[:, None, None]
        std = np.asarray(IMAGENET_STD, np.float32)[:, None, None]
        return ((np.broadcast_to(x, (3, *x.shape)) - mean) / std).astype(np.float32)

    def __call__(self, array: np.ndarray) -> np.ndarray:
        return self.normalise(self.geometry(array))
