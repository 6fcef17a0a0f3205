"""Write a liver mask back on the exact grid of the image it came from (NIfTI, DICOM series, PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import InputError
from liverfib.image import Image

__all__ = ["write_mask_like"]


def write_mask_like(mask: np.ndarray, image: Image, path: str | Path) -> Path:
    """Write ``mask`` (same shape as ``image.array``) to ``path`` atomically.

    * ``.nii``/``.nii.gz`` from a NIfTI input: the voxel order, shape, affine and header of the
      input file are restored (the reorientation done by :func:`liverfib.io.read_nifti` is undone).
    * ``.nii``/``.nii.gz`` from a DICOM series: the series affine (``image.meta["affine"]``).
    * ``.png``: a 2D mask as uint8 0/255.
    """
    path = Path(path)
    if mask.shape != image.shape:
        raise InputError(f"mask shape {mask.shape} differs from image shape {image.shape}")
    if path.name.endswith(".png"):
        from liverfib.io.masks import write_mask_png

        if mask.ndim != 2:
            raise InputError(f"{path}: PNG output needs a 2D mask, got shape {mask.shape}; use .nii.gz")
        return write_mask_png(mask > 0, path)
    if not path.name.endswith((".nii", ".nii.gz")):
        raise InputError(f"{path}: expected an output ending in .nii.gz, .nii or .png")
    if image.meta.get("format", "").startswith("NIfTI") and image.path is not None and image.path.is_file():
        from liverfib.io.atomic import atomic_write
        from liverfib.io.nifti import encode_nifti

        return atomic_write(path, data=encode_nifti(_on_original_nifti_grid(mask, image), gz=path.name.endswith(".gz")))
    from liverfib.io.nifti import write_nifti

    return write_nifti(image.with_array((mask > 0).astype(np.uint8)), path)


def _on_original_nifti_grid(mask: np.ndarray, image: Image) -> Any:
    """``mask`` as a nibabel image in the voxel order, shape, affine and header of ``image``'s file."""
    import nibabel as nib
    from nibabel.orientations import apply_orientation, io_orientation, ornt_transform

    src = nib.load(str(image.path))
    orig_affine = np.asarray(src.affine, dtype=np.float64)
    vol = (mask > 0).astype(np.uint8).T  # (z, y, x) -> reoriented (x, y, z)
    if vol.ndim == 2:
        vol = vol[..., None]
    back = ornt_transform(io_orientation(np.asarray(image.meta["affine"])), io_orientation(orig_affine))
    data = apply_orientation(vol, back)
    shape = tuple(src.shape[: data.ndim])
    if data.shape != shape:
        data = data.reshape(shape) if data.size == int(np.prod(shape)) else data
    if data.shape != shape:
        raise InputError(f"{image.path}: cannot map the mask {mask.shape} back to the file grid {src.shape}")
    header = src.header.copy()
    header.set_data_dtype(np.uint8)
    out = nib.Nifti1Image(np.ascontiguousarray(data), orig_affine, header=header)
    out.header["scl_slope"] = 1.0
    out.header["scl_inter"] = 0.0
    return out
