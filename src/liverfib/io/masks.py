"""Binary masks and image/mask pair collections.

A mask file is any image liverfib reads (PNG 0/255 or 0/1, NIfTI, ...); foreground is every pixel
above half the file's maximum value. A pair collection is either a folder with ``manifest.csv``
(columns ``file,mask`` and optionally ``subject``, paths relative to the folder) or a folder with
``images/`` and ``masks/`` sub-folders holding files of the same stem.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liverfib.errors import InputError
from liverfib.io.atomic import atomic_write

__all__ = ["MaskPair", "read_mask", "list_mask_pairs", "write_mask_png"]


@dataclass(frozen=True)
class MaskPair:
    """An image with its binary mask; ``group`` keeps correlated pairs (same subject) together."""

    image: Path
    mask: Path
    group: str


def read_mask(path: str | Path, *, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a binary mask as a bool array; ``shape`` checks it against its image."""
    from liverfib.io import read_image

    arr = np.asarray(read_image(path).array)
    if not np.isfinite(arr).all():
        raise InputError(f"{path}: mask holds NaN or infinite values")
    top = float(arr.max()) if arr.size else 0.0
    mask = arr > top / 2.0 if top > 0 else np.zeros(arr.shape, bool)
    if shape is not None and tuple(mask.shape) != tuple(shape):
        raise InputError(f"{path}: mask is {mask.shape[::-1]} (w×h…) but its image is {tuple(shape)[::-1]}")
    return mask


def write_mask_png(mask: np.ndarray, path: str | Path) -> Path:
    """Write a 2D bool mask as uint8 0/255 PNG, atomically."""
    import cv2

    path = Path(path)
    if mask.ndim != 2:
        raise InputError(f"{path}: a PNG mask must be 2D, got shape {mask.shape}")
    ok, buf = cv2.imencode(".png", np.where(mask, 255, 0).astype(np.uint8))
    if not ok:  # pragma: no cover - OpenCV fails only on absurd inputs
        raise InputError(f"{path}: could not encode mask")
    return atomic_write(path, data=buf.tobytes())


def list_mask_pairs(root: str | Path) -> list[MaskPair]:
    """List image/mask pairs under ``root`` (``manifest.csv`` or ``images/`` + ``masks/``)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: expected a folder of image/mask pairs, found {'a file' if root.exists() else 'nothing'}")
    manifest = root / "manifest.csv"
    pairs = _from_manifest(root, manifest) if manifest.is_file() else _from_folders(root)
    if not pairs:
        raise InputError(f"{root}: no image/mask pairs found")
    return pairs


def _from_manifest(root: Path, manifest: Path) -> list[MaskPair]:
    with manifest.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if not {"file", "mask"} <= cols:
            raise InputError(f"{manifest}: expected columns file,mask[,subject], found {sorted(cols)}")
        pairs = []
        for row in reader:
            image, mask = root / row["file"], root / row["mask"]
            for p in (image, mask):
                if not p.is_file():
                    raise InputError(f"{manifest}: listed file {p} does not exist")
            pairs.append(MaskPair(image, mask, row.get("subject") or image.stem))
    return pairs


def _from_folders(root: Path) -> list[MaskPair]:
    from liverfib.io import list_images

    img_dir, mask_dir = root / "images", root / "masks"
    if not (img_dir.is_dir() and mask_dir.is_dir()):
        found = sorted(p.name for p in root.iterdir())[:8]
        raise InputError(f"{root}: expected manifest.csv or images/ + masks/ sub-folders, found {found}")
    masks = {p.stem: p for p in list_images(mask_dir)}
    pairs, unmatched = [], []
    for image in list_images(img_dir):
        if image.stem in masks:
            pairs.append(MaskPair(image, masks[image.stem], image.stem))
        else:
            unmatched.append(image.name)
    if unmatched and not pairs:
        raise InputError(f"{root}: no image in images/ has a mask of the same name in masks/ (e.g. {unmatched[0]})")
    return pairs
