"""NIfTI uploads (``.nii`` / ``.nii.gz``) for 3D liver segmentation: recognised by content, checked
and de-identified in place before a job is queued.

A volume is refused when it is not a single-file NIfTI-1/2, not 3D (a 4D file with one frame counts
as 3D), has a side under :data:`MIN_SIDE` voxels or more voxels than ``cfg.max_volume_voxels``
(both checked on the header, before any data is decompressed), holds RGB or complex voxels, data
that do not decode (truncated file) or NaN/inf values. The stored copy keeps the voxel values
(header scaling applied) and the affine; the free-text header fields (``descrip``, ``aux_file``,
``intent_name``, ``db_name``) are blanked and header extensions (which may carry DICOM tags) dropped.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Any

from liverfib.clinical.web.config import UploadRejected, WebConfig
from liverfib.io.atomic import atomic_write

__all__ = ["MIN_SIDE", "NIFTI_KINDS", "sniff_nifti", "check_nifti"]

#: Smallest side (voxels) of an accepted volume.
MIN_SIDE = 8
#: Upload kinds of :func:`sniff_nifti` (they are also the stored file's suffix).
NIFTI_KINDS = ("nii", "nii.gz")
_TEXT_FIELDS = ("descrip", "aux_file", "intent_name", "db_name")


def _is_nifti_header(head: bytes) -> bool:
    for order in ("<", ">"):
        size = struct.unpack(f"{order}i", head[:4])[0] if len(head) >= 4 else 0
        if size == 348 and len(head) >= 348 and head[344:348] == b"n+1\0":  # single-file NIfTI-1
            return True
        if size == 540 and head[4:8] == b"n+2\0":
            return True
    return False


def sniff_nifti(head: bytes) -> str | None:
    """``"nii"`` or ``"nii.gz"`` when the first bytes of an upload are a single-file NIfTI-1/2
    header (plain or gzip-compressed), else ``None``."""
    if head[:2] == b"\x1f\x8b":
        try:
            inner = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 1024)
        except zlib.error:
            return None
        return "nii.gz" if _is_nifti_header(inner) else None
    return "nii" if _is_nifti_header(head) else None


def _check_header(img: Any, cfg: WebConfig) -> None:
    import numpy as np

    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise UploadRejected(400, f"NIfTI of shape {shape}: expected one 3D volume (x, y, z)")
    if min(shape) < MIN_SIDE:
        raise UploadRejected(400, f"NIfTI volume of {shape} voxels: need at least {MIN_SIDE} on each side")
    n = int(np.prod(shape))
    if n > cfg.max_volume_voxels:
        raise UploadRejected(413, f"NIfTI volume has {n} voxels, above the limit of {cfg.max_volume_voxels}")
    dtype = img.get_data_dtype()
    if dtype.fields is not None or dtype.kind not in "iuf":
        raise UploadRejected(400, f"NIfTI voxel type {dtype} (RGB or complex); expected a gray volume")


def _read_checked(fh: Any, cfg: WebConfig) -> tuple[Any, Any]:
    """``(image, voxels)`` of the NIfTI stream ``fh``; the header is checked before the data are read."""
    import nibabel as nib
    import numpy as np
    from nibabel.fileholders import FileHolder

    head = fh.read(4)
    fh.seek(0)
    klass = nib.Nifti2Image if head in (struct.pack("<i", 540), struct.pack(">i", 540)) else nib.Nifti1Image
    try:
        img = klass.from_file_map({"header": FileHolder(fileobj=fh), "image": FileHolder(fileobj=fh)})
    except Exception as exc:  # nibabel raises many types on corrupt headers
        raise UploadRejected(400, f"corrupt NIfTI header ({type(exc).__name__})") from None
    _check_header(img, cfg)
    try:
        return img, np.asanyarray(img.dataobj)  # header scaling applied
    except (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile) as exc:
        raise UploadRejected(400, f"truncated or corrupt NIfTI data ({type(exc).__name__})") from None


def check_nifti(path: Path, kind: str, cfg: WebConfig) -> None:
    """Check the NIfTI volume at ``path`` (``kind`` from :func:`sniff_nifti`; the file name does not
    matter) and replace it, atomically, by its de-identified copy.

    Raises:
        UploadRejected: 400 not a readable 3D gray volume, 413 too many voxels.
    """
    import numpy as np

    with gzip.open(path, "rb") if kind == "nii.gz" else path.open("rb") as fh:
        img, data = _read_checked(fh, cfg)
    if data.dtype == np.float64:
        data = data.astype(np.float32)
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise UploadRejected(400, "NIfTI volume holds NaN or infinite values")
    header = img.header.copy()
    for field in _TEXT_FIELDS:
        if field in header:
            header[field] = b""
    header.extensions.clear()
    header.set_data_dtype(data.dtype)
    clean = type(img)(data.reshape(data.shape[:3]), img.affine, header).to_bytes()
    with atomic_write(path, "wb") as fh:
        fh.write(gzip.compress(clean, mtime=0) if kind == "nii.gz" else clean)
