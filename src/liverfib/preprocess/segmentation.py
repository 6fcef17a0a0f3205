"""Preprocessing for 2D segmentation networks (callables, no I/O).

The whole frame is resized to ``S x S`` (no fan crop, so a predicted mask maps straight back onto
the input) and ImageNet-normalised like the staging input. Masks follow with nearest-neighbour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from liverfib.errors import ConfigError
from liverfib.preprocess.fan import to_uint8
from liverfib.preprocess.transforms import UltrasoundPreprocess

__all__ = ["SegPreprocessConfig", "SegPreprocess", "resize_mask", "resize_probability"]


@dataclass(frozen=True)
class SegPreprocessConfig:
    """Settings of :class:`SegPreprocess` (saved in segmentation checkpoints)."""

    img_size: int = 256

    def __post_init__(self) -> None:
        if not 32 <= self.img_size <= 1024 or self.img_size % 32:
            raise ConfigError(f"img_size must be a multiple of 32 in [32, 1024], got {self.img_size}")

    def to_dict(self) -> dict:
        return asdict(self)


class SegPreprocess:
    """Gray ``(H, W)`` -> float32 ``(3, S, S)``; ``geometry`` gives the uint8 ``(S, S)`` stage."""

    def __init__(self, config: SegPreprocessConfig | None = None) -> None:
        self.config = config or SegPreprocessConfig()

    def geometry(self, array: np.ndarray) -> np.ndarray:
        import cv2

        s = self.config.img_size
        return cv2.resize(to_uint8(np.asarray(array)), (s, s), interpolation=cv2.INTER_AREA)

    normalise = staticmethod(UltrasoundPreprocess.normalise)

    def __call__(self, array: np.ndarray) -> np.ndarray:
        return self.normalise(self.geometry(array))


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Bool/uint8 ``(H, W)`` -> uint8 0/255 ``(size, size)`` (nearest neighbour)."""
    import cv2

    m = np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8)
    return cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)


def resize_probability(prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Float ``(S, S)`` probability map -> ``shape`` (bilinear), values kept in [0, 1]."""
    import cv2

    out = cv2.resize(prob.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0)
