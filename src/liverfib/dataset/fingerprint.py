"""Per-image fingerprints used by the audit: content hashes, a near-duplicate descriptor and
acquisition-source features."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liverfib.image import Image
from liverfib.preprocess.fan import detect_fan, find_overlay_text

__all__ = [
    "DESCRIPTOR_SIDE",
    "ImageFingerprint",
    "file_sha256",
    "fingerprint_image",
    "near_duplicate_descriptor",
    "perceptual_hash",
    "phash_similarity",
]

#: Side of the low-resolution descriptor used for near-duplicate matching.
DESCRIPTOR_SIDE = 24
#: The perceptual hash keeps the lowest ``PHASH_SIDE``² DCT coefficients of a 32² thumbnail.
PHASH_SIDE = 8


@dataclass(frozen=True)
class ImageFingerprint:
    """What the audit knows about one distinct file content."""

    pixel_sha1: str
    descriptor: np.ndarray  # (DESCRIPTOR_SIDE**2,) float32, zero-mean, unit-norm
    phash: np.ndarray  # (PHASH_SIDE**2,) bool, DCT perceptual hash of the fan crop
    width: int
    height: int
    format: str
    mode: str
    bit_depth: int
    colour: bool
    fan_bbox: tuple[int, int, int, int]
    fan_area_fraction: float
    fan_top_width_fraction: float
    background_level: float
    overlay_text_fraction: float

    @property
    def source_key(self) -> str:
        """Coarse acquisition-source key: encoding, pixel grid and channel layout."""
        return f"{self.format} {self.width}x{self.height} {self.mode} {self.bit_depth}-bit"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def near_duplicate_descriptor(
    array: np.ndarray, fan_mask: np.ndarray, fan_bbox: tuple[int, int, int, int]
) -> np.ndarray:
    """Low-resolution, brightness-invariant descriptor of the fan content.

    The fan's bounding box is cropped (so frames, text and small crops/pads matter little), shrunk
    to ``DESCRIPTOR_SIDE``² by area averaging (so re-encoding noise and resizes vanish), then
    z-scored over the cells well inside the fan (so gain/brightness/contrast changes vanish, and
    the fan outline that every image of a device shares does not make them look alike). Cosine similarity of two descriptors is
    their Pearson correlation at low resolution.
    """
    import cv2

    r0, c0, r1, c1 = fan_bbox
    crop = array[r0:r1, c0:c1].astype(np.float32)
    inside = fan_mask[r0:r1, c0:c1].astype(np.float32)
    side = (DESCRIPTOR_SIDE, DESCRIPTOR_SIDE)
    small = cv2.resize(crop, side, interpolation=cv2.INTER_AREA)
    cover = cv2.resize(inside, side, interpolation=cv2.INTER_AREA).ravel() > 0.99
    v = small.ravel()
    v = np.where(cover, v - v[cover].mean(), 0.0) if cover.any() else v - v.mean()
    norm = float(np.linalg.norm(v))
    return (v / norm if norm > 0 else v).astype(np.float32)


def perceptual_hash(array: np.ndarray, fan_bbox: tuple[int, int, int, int]) -> np.ndarray:
    """64-bit DCT perceptual hash (pHash) of the fan's bounding box: ``(PHASH_SIDE**2,)`` bool.

    The crop is area-shrunk to 32², transformed by a 2D DCT-II, and the lowest 8×8 frequencies are
    compared with their median (the scheme of ``imagehash.phash``; written here in numpy/scipy so the
    audit needs no extra package). Two images' hash agreement (``phash_similarity``) is insensitive
    to gain, re-encoding and resizing, and to local speckle that moves pixel correlation.
    """
    import cv2
    from scipy.fft import dctn

    r0, c0, r1, c1 = fan_bbox
    crop = array[r0:r1, c0:c1].astype(np.float32)
    small = cv2.resize(crop, (32, 32), interpolation=cv2.INTER_AREA)
    low = dctn(small, norm="ortho")[:PHASH_SIDE, :PHASH_SIDE].ravel()
    return low > np.median(low)


def phash_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of equal bits between hashes: ``(N, 64)`` x ``(M, 64)`` bool -> ``(N, M)`` in [0, 1]."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    return (a @ b.T + (1.0 - a) @ (1.0 - b).T) / a.shape[1]


def fingerprint_image(image: Image) -> ImageFingerprint:
    """Fingerprint one decoded 2D image."""
    arr = image.array
    fan = detect_fan(arr)
    return ImageFingerprint(
        pixel_sha1=hashlib.sha1(arr.tobytes() + str(arr.shape).encode()).hexdigest(),
        descriptor=near_duplicate_descriptor(arr, fan.mask, fan.bbox),
        phash=perceptual_hash(arr, fan.bbox),
        width=int(arr.shape[1]),
        height=int(arr.shape[0]),
        format=str(image.meta.get("format", "?")),
        mode=str(image.meta.get("mode", "?")),
        bit_depth=int(image.meta.get("bit_depth", 8)),
        colour=bool(image.meta.get("colour", False)),
        fan_bbox=fan.bbox,
        fan_area_fraction=fan.area_fraction,
        fan_top_width_fraction=fan.top_width_fraction,
        background_level=fan.background_level,
        overlay_text_fraction=find_overlay_text(arr, fan),
    )
