"""Read and write NIfTI volumes (``.nii``, ``.nii.gz``; NIfTI-1 and NIfTI-2) with nibabel.

Axis convention (the same for every volume liverfib reads, DICOM series included):
    The voxel grid is reoriented (flips and axis swaps only, no resampling) so that its axes point
    to patient Left, Posterior and Superior (``LPS``, DICOM's patient axes), and the array is
    returned in ``(z, y, x)`` order: ``array[k, j, i]``. An axial slice ``array[k]`` then displays
    in the radiological convention (anterior at the top, patient right on the left of the screen).
    ``spacing_mm`` is ``(z, y, x)`` in mm, taken from the header zooms.

    ``meta["affine"]`` is the 4x4 NIfTI (RAS+) affine of the reoriented grid: it maps the voxel
    index in NIfTI order ``(i, j, k, 1) = (x, y, z, 1)`` to millimetres, so the world position of
    ``array[k, j, i]`` is ``affine @ [i, j, k, 1]``. The file's own affine and axis codes are kept
    in ``meta["original_affine"]`` and ``meta["original_axcodes"]``.

    A 2D file (two dimensions in the header) is reoriented within its plane and gives ``(H, W)``.

nibabel is imported inside the functions so that ``import liverfib.io`` stays light.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liverfib.errors import InputError, unknown_choice
from liverfib.image import MODALITIES, Image
from liverfib.io.atomic import atomic_write
from liverfib.io.orientation import reorient_to_lps

if TYPE_CHECKING:
    import nibabel as nib

__all__ = ["read_nifti", "write_nifti", "encode_nifti"]

#: NIfTI ``sizeof_hdr`` value -> format version.
_HEADER_SIZES = {348: 1, 540: 2}

#: Exceptions nibabel / gzip raise on malformed input (nibabel's own classes are added at run time).
_IO_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    zlib.error,
    ValueError,
    struct.error,
    TypeError,
    IndexError,
)


def read_nifti(path: str | Path, *, modality: str = "OT") -> Image:
    """Read a 2D or 3D NIfTI file into an :class:`Image` (see the module docstring for the axes).

    Args:
        path: ``.nii`` or ``.nii.gz`` (recognised by content; a NIfTI-1 ``.hdr``/``.img`` pair
            is read through nibabel by name).
        modality: the modality to record (the file does not say); one of US, MR, CT, OT.

    Returns:
        ``(D, H, W)`` = ``(z, y, x)`` volume (``(H, W)`` for a 2D file) with ``spacing_mm`` in the
        same order. A trailing singleton 4th dimension is dropped.

    Raises:
        InputError: not NIfTI, corrupt or truncated (gzip included), a real 4D (time) series,
            zero-size, NaN or infinite voxels.
        ConfigError: unknown modality.
    """
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError

    if modality not in MODALITIES:
        raise unknown_choice("modality", modality, MODALITIES)
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a NIfTI file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")

    errors = (*_IO_ERRORS, ImageFileError, HeaderDataError)
    try:
        img, data = _load(path)
    except InputError:
        raise
    except errors as exc:
        raise InputError(f"{path}: corrupt or truncated NIfTI ({_one_line(exc)})") from None

    data = _checked_voxels(path, data)

    affine = np.asarray(img.affine, dtype=np.float64)
    zooms = [float(z) for z in img.header.get_zooms()[: data.ndim]]
    array, new_affine, spacing, _ = reorient_to_lps(data, affine, zooms)
    meta: dict[str, Any] = {
        "format": f"NIfTI-{_version(img)}",
        "affine": new_affine,
        "axcodes": _axcodes(new_affine),
        "original_affine": affine,
        "original_axcodes": _axcodes(affine),
        "original_shape": tuple(int(s) for s in img.shape),
        "dtype": str(array.dtype),
        "qform_code": int(img.header["qform_code"]),
        "sform_code": int(img.header["sform_code"]),
        "is_sequence": False,
    }
    return Image(array=array, spacing_mm=spacing, modality=modality, path=path, meta=meta)


def _checked_voxels(path: Path, data: np.ndarray) -> np.ndarray:
    """Gray 2D or 3D voxels (a trailing singleton dimension dropped, bool as uint8), all finite."""
    if data.dtype.fields is not None:
        raise InputError(f"{path}: RGB/structured NIfTI ({data.dtype}) is not supported; expected gray")
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim > 3:
        raise InputError(
            f"{path}: {data.ndim}D NIfTI of shape {data.shape} (e.g. a time series); liverfib reads 2D "
            "or 3D volumes - extract one volume first (e.g. nibabel `img.slicer[..., 0]`)"
        )
    if data.ndim < 2:
        raise InputError(f"{path}: {data.ndim}D NIfTI of shape {data.shape}; expected 2D or 3D")
    if data.size == 0:
        raise InputError(f"{path}: NIfTI has zero size {data.shape}")
    if data.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise InputError(
                f"{path}: {bad} of {data.size} voxels are NaN or infinite; clean the volume first"
            )
    elif data.dtype == np.bool_:
        data = data.astype(np.uint8)
    return data


def write_nifti(image: Image, path: str | Path) -> Path:
    """Write an :class:`Image` to ``.nii`` / ``.nii.gz`` so that :func:`read_nifti` gives it back.

    The array is stored in NIfTI order ``(x, y, z)``. The affine is ``image.meta["affine"]`` when
    present (its voxel sizes are set to ``image.spacing_mm`` if they differ), else an LPS-oriented
    affine built from ``spacing_mm`` (1 mm when the image has no spacing).

    Returns:
        The path written.
    """
    import nibabel as nib

    path = Path(path)
    if not path.name.endswith((".nii", ".nii.gz")):
        raise InputError(f"{path}: expected a path ending in .nii or .nii.gz")
    array = image.array
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    elif array.dtype == np.float16:
        array = array.astype(np.float32)
    elif array.dtype.kind in "iu" and array.dtype.itemsize == 8:
        if array.size and (array.min() < np.iinfo(np.int32).min or array.max() > np.iinfo(np.int32).max):
            raise InputError(f"{path}: 64-bit integer values do not fit the int32 NIfTI type")
        array = array.astype(np.int32)
    data = array.T  # (z, y, x) -> (x, y, z); (H, W) -> (W, H)
    affine = _affine_for(image)
    img = nib.Nifti1Image(np.ascontiguousarray(data), affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    try:
        atomic_write(path, data=encode_nifti(img, gz=path.name.endswith(".gz")))
    except OSError as exc:
        raise InputError(f"{path}: cannot write NIfTI ({exc.strerror or exc})") from None
    return path


def encode_nifti(img: Any, *, gz: bool) -> bytes:
    """The file bytes ``nibabel.save`` writes for a nibabel image: ``.nii``, or with ``gz`` gzip at
    nibabel's settings (level 1, mtime 0, no name), so the same image always gives the same bytes."""
    import io

    raw = img.to_bytes()
    if not gz:
        return raw
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=buf, mtime=0) as fh:
        fh.write(raw)
    return buf.getvalue()


def _load(path: Path) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Parse the header by content (not by extension) and read the voxels."""
    import nibabel as nib

    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as fh:
        head = fh.read(348)
        if len(head) < 348:
            raise InputError(f"{path}: truncated NIfTI header ({len(head)} of 348 bytes)")
        sizeof_hdr = struct.unpack("<i", head[:4])[0]
        if sizeof_hdr not in _HEADER_SIZES:
            sizeof_hdr = struct.unpack(">i", head[:4])[0]
        version = _HEADER_SIZES.get(sizeof_hdr)
        if version is None:
            raise InputError(
                f"{path}: not a NIfTI file (header size field is {sizeof_hdr}, expected 348 or 540)"
            )
        if version == 1 and head[344:348] == b"ni1\x00":  # header/image pair: nibabel finds the .img
            img = nib.load(path)
            return img, np.asanyarray(img.dataobj)
        fh.seek(0)
        klass = nib.Nifti1Image if version == 1 else nib.Nifti2Image
        img = klass.from_file_map(klass.make_file_map({"image": fh}))
        data = np.asanyarray(img.dataobj)
    return img, data


def _affine_for(image: Image) -> np.ndarray:
    """The NIfTI affine to write: meta["affine"] scaled to spacing_mm, or LPS from spacing."""
    spacing_xyz = tuple(reversed(image.spacing_mm)) if image.spacing_mm is not None else None
    if spacing_xyz is not None and len(spacing_xyz) == 2:
        spacing_xyz = (*spacing_xyz, 1.0)
    given = image.meta.get("affine")
    if given is not None:
        affine = np.array(given, dtype=np.float64)
        if affine.shape != (4, 4) or not np.isfinite(affine).all():
            raise InputError(f"{image.name}: meta['affine'] must be a finite 4x4 matrix, got {affine.shape}")
        if spacing_xyz is not None:
            norms = np.linalg.norm(affine[:3, :3], axis=0)
            if np.all(norms > 0) and not np.allclose(norms, spacing_xyz, rtol=1e-5):
                affine[:3, :3] = affine[:3, :3] / norms * np.asarray(spacing_xyz)
        return affine
    sx, sy, sz = spacing_xyz if spacing_xyz is not None else (1.0, 1.0, 1.0)
    return np.diag([-sx, -sy, sz, 1.0])  # voxel axes to L, P, S


def _axcodes(affine: np.ndarray) -> tuple[str, ...]:
    from nibabel.orientations import aff2axcodes

    return tuple(str(c) for c in aff2axcodes(affine))


def _version(img: Any) -> int:
    import nibabel as nib

    return 2 if isinstance(img, nib.Nifti2Image) else 1


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__
