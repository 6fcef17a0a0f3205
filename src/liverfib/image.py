"""`Image`: the one image type that crosses every boundary in liverfib.

It carries the pixel array together with what is needed to interpret it: physical spacing,
modality and where it came from. 2D images are ``(H, W)``, volumes ``(D, H, W)``; multi-frame
ultrasound is ``(T, H, W)`` with ``is_sequence=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Image", "MODALITIES"]

#: Modalities liverfib knows. "OT" is "other / unknown" (e.g. a plain PNG of unknown origin).
MODALITIES = ("US", "MR", "CT", "OT")


@dataclass(frozen=True)
class Image:
    """A gray-scale image or volume with its metadata.

    Attributes:
        array: pixel data, ``(H, W)`` for 2D or ``(D, H, W)`` for 3D / multi-frame. Gray only:
            colour inputs are converted on read (see :func:`liverfib.io.read_image`).
        spacing_mm: physical pixel size, one value per array axis (row, col) or (slice, row, col);
            ``None`` when the file does not say (plain PNG/JPEG).
        modality: one of :data:`MODALITIES`.
        path: the file (or series folder) it was read from, if any.
        meta: source metadata (format, bit depth, original channels, DICOM tags of interest, ...).
    """

    array: np.ndarray
    spacing_mm: tuple[float, ...] | None = None
    modality: str = "OT"
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.array.ndim not in (2, 3):
            raise ValueError(f"Image array must be 2D or 3D, got shape {self.array.shape}")
        if self.spacing_mm is not None and len(self.spacing_mm) != self.array.ndim:
            raise ValueError(f"spacing_mm has {len(self.spacing_mm)} values for a {self.array.ndim}D array")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def ndim(self) -> int:
        return int(self.array.ndim)

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else "<memory>"

    def with_array(self, array: np.ndarray, **changes: Any) -> Image:
        """A copy with a new array (and optionally other fields changed)."""
        return replace(self, array=array, **changes)
