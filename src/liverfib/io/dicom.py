"""Read one DICOM file (ultrasound, MR, CT; single- and multi-frame) into an :class:`Image`.

pydicom is imported inside the functions so that ``import liverfib.io`` stays light.

Conventions:
    * A single-frame file gives ``(H, W)``. A multi-frame file gives ``(T, H, W)`` with
      ``meta["is_sequence"] = True`` (cine loop) unless it is an MR/CT multi-frame with a known slice
      spacing, which is a volume ``(D, H, W)``. ``frame=k`` keeps one frame as ``(H, W)``.
    * A cine loop has no physical spacing along time: ``spacing_mm = (0.0, row_mm, col_mm)``; the
      frame time (if any) is in ``meta["FrameTime"]`` (ms).
    * Colour (RGB, YBR, palette) is reduced to gray with the rule of :mod:`liverfib.io.raster`.
    * MONOCHROME1 is inverted within the stored bit range (so that high values are bright), then
      RescaleSlope/Intercept are applied; a rescaled image is ``float32``.
    * DICOM series folders are read by :mod:`liverfib.io.dicom_series`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from liverfib.errors import InputError
from liverfib.image import MODALITIES, Image
from liverfib.io.dicom_tags import (
    PARSE_ERRORS,
    has_pixel_data,
    header_meta,
    multiframe_slice_spacing,
    n_frames,
    one_line,
    pixel_spacing,
)
from liverfib.io.raster import MIN_SIDE

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["dataset_to_image", "read_checked_dataset", "read_dicom"]

#: Transfer syntax UID -> pip package that decodes it (pydicom plugin).
_DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",  # JPEG Extended
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",  # JPEG 2000
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg",  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg",  # HTJ2K
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",  # RLE Lossless
}

_UNDEFINED_LENGTH = 0xFFFFFFFF


def read_dicom(path: str | Path, *, frame: int | None = None) -> Image:
    """Read one DICOM file into an :class:`Image`.

    Args:
        path: a DICOM file (Part 10, with the ``DICM`` marker).
        frame: for a multi-frame file, the frame to keep (0-based) as ``(H, W)``; ``None`` keeps all
            frames as ``(T, H, W)``.

    Returns:
        ``(H, W)`` or ``(T, H, W)`` image; ``spacing_mm`` from PixelSpacing, ImagerPixelSpacing or
        the ultrasound regions (cm converted to mm); modality US/MR/CT, else OT.

    Raises:
        InputError: not DICOM, truncated or corrupt, no pixel data, no decoder for the transfer
            syntax, frame out of range, NaN/inf after rescale.
    """
    path = Path(path)
    return dataset_to_image(read_checked_dataset(path), path, frame=frame)


def read_checked_dataset(path: Path) -> Dataset:
    """Parse a DICOM file (pixel data kept as bytes) and check it is complete."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; read a DICOM series folder with read_dicom_series")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror})") from None
    if size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise InputError(
            f"{path}: not a DICOM file (no 'DICM' marker at byte 128); expected a DICOM Part 10 file"
        ) from None
    except PARSE_ERRORS as exc:
        raise InputError(f"{path}: corrupt or truncated DICOM ({one_line(exc)})") from None

    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        raise InputError(
            f"{path}: corrupt or truncated DICOM header (no Transfer Syntax UID in the file meta information)"
        )
    _check_complete(ds, path, size)
    return ds


def _check_complete(ds: Dataset, path: Path, size: int) -> None:
    """pydicom silently stops at a short read; detect it from the last top-level element."""
    from pydicom.dataelem import RawDataElement

    tags = list(ds.keys())
    if not tags:
        raise InputError(f"{path}: corrupt or truncated DICOM (no data elements after the header)")
    last = ds.get_item(tags[-1])
    if not isinstance(last, RawDataElement) or last.length == _UNDEFINED_LENGTH:
        return
    end = last.value_tell + last.length
    if end > size or (end < size and size - end < 8):
        raise InputError(
            f"{path}: corrupt or truncated DICOM (element {last.tag} needs bytes up to {end}, "
            f"file has {size})"
        )


def _check_decodable(ds: Dataset, path: Path) -> None:
    """Required image tags present, sizes sane and a decoder available for the transfer syntax."""
    from pydicom.pixels import get_decoder

    if not has_pixel_data(ds):
        sop = ds.get("SOPClassUID")
        kind = f" (SOP class: {sop.name})" if sop is not None and hasattr(sop, "name") else ""
        raise InputError(f"{path}: DICOM file has no pixel data{kind}; expected an image")
    missing = [t for t in ("Rows", "Columns", "BitsAllocated") if ds.get(t) is None]
    if missing:
        raise InputError(f"{path}: corrupt DICOM image (missing {', '.join(missing)})")
    rows, cols = int(ds.Rows), int(ds.Columns)
    if rows == 0 or cols == 0:
        raise InputError(f"{path}: image has zero size ({rows} rows x {cols} columns)")
    if min(rows, cols) < MIN_SIDE:
        raise InputError(
            f"{path}: image is {cols}x{rows} pixels; need at least {MIN_SIDE} pixels on each side"
        )
    tsyntax = ds.file_meta.TransferSyntaxUID
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise InputError(
            f"{path}: transfer syntax '{tsyntax.name}' ({tsyntax}) cannot be decoded by pydicom; "
            "convert the file to uncompressed frames first (e.g. with dcmdjpeg, gdcmconv or ffmpeg)"
        ) from None
    if not decoder.is_available:
        package = _DECODER_PACKAGES.get(str(tsyntax), "python-gdcm")
        raise InputError(
            f"{path}: compressed transfer syntax '{tsyntax.name}' ({tsyntax}) has no decoder "
            f"installed; install it with `pip install {package}`"
        )


def dataset_to_image(ds: Dataset, path: Path, *, frame: int | None) -> Image:
    """Pixel array of a parsed dataset, gray, inverted/rescaled, with spacing and metadata."""
    _check_decodable(ds, path)
    frames = n_frames(ds)
    if frame is not None and not 0 <= frame < frames:
        raise InputError(
            f"{path}: frame {frame} out of range; the file has {frames} "
            f"frame{'s' if frames != 1 else ''} (0..{frames - 1})"
        )
    arr, photometric = _pixels(ds, path, None if frames == 1 else frame)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    channels = 3 if photometric == "PALETTE COLOR" else samples
    colour = False
    if channels > 1:
        arr, colour = _to_gray(arr)
    inverted = photometric == "MONOCHROME1"
    if inverted:
        arr = _invert(arr, ds)
    arr, rescaled = _rescale(arr, ds, path)

    modality_tag = str(ds.get("Modality", "") or "").strip().upper()
    modality = modality_tag if modality_tag in MODALITIES else "OT"
    pixel_mm, source = pixel_spacing(ds)
    meta = header_meta(ds)
    meta.update(
        {
            "format": "DICOM",
            "TransferSyntaxUID": str(ds.file_meta.TransferSyntaxUID),
            "channels": channels,
            "colour": colour,
            "inverted": inverted,
            "rescaled": rescaled,
            "n_frames": frames,
            "bit_depth": int(ds.get("BitsStored", ds.BitsAllocated) or ds.BitsAllocated),
            "pixel_spacing_mm": pixel_mm,
            "spacing_source": source,
        }
    )

    spacing: tuple[float, ...] | None = pixel_mm
    if arr.ndim == 3:  # all frames of a multi-frame file
        slice_mm = multiframe_slice_spacing(ds) if modality in ("MR", "CT") else None
        meta["is_sequence"] = slice_mm is None
        if pixel_mm is not None:
            spacing = (slice_mm if slice_mm is not None else 0.0, *pixel_mm)
    else:
        meta["is_sequence"] = False
        if frame is not None:
            meta["frame"] = frame
    return Image(array=np.ascontiguousarray(arr), spacing_mm=spacing, modality=modality, path=path, meta=meta)


def _pixels(ds: Dataset, path: Path, index: int | None) -> tuple[np.ndarray, str]:
    """Decoded pixels (frame ``index``, or all) with palette colour applied, and the photometric name."""
    from pydicom.pixels import apply_color_lut, pixel_array

    try:
        arr = pixel_array(ds, index=index)
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
        if photometric == "PALETTE COLOR":
            arr = apply_color_lut(arr, ds)
    except PARSE_ERRORS as exc:
        raise InputError(f"{path}: corrupt or truncated pixel data ({one_line(exc)})") from None
    return arr, photometric


def _rescale(arr: np.ndarray, ds: Dataset, path: Path) -> tuple[np.ndarray, bool]:
    """RescaleSlope/Intercept applied (``float32``) when present; float pixels checked finite."""
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    rescaled = slope is not None or intercept is not None
    if rescaled:
        s = float(slope) if slope is not None else 1.0
        b = float(intercept) if intercept is not None else 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            arr = (arr.astype(np.float64) * s + b).astype(np.float32)
        if not np.isfinite(arr).all():
            raise InputError(
                f"{path}: NaN or infinite values after applying RescaleSlope={s:g}, "
                f"RescaleIntercept={b:g}; the rescale tags are corrupt"
            )
    elif arr.dtype.kind == "f":
        arr = arr.astype(np.float32, copy=False)
        if not np.isfinite(arr).all():
            raise InputError(f"{path}: pixel data contains NaN or infinite values")
    return arr, rescaled


def _to_gray(arr: np.ndarray) -> tuple[np.ndarray, bool]:
    """``(..., 3)`` RGB -> gray: equal channels give one channel, else ITU-R 601 luma (colour=True)."""
    rgb = arr[..., :3]
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return np.ascontiguousarray(rgb[..., 0]), False
    rgb = rgb.astype(np.float64)
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    if arr.dtype.kind in "ui":
        info = np.iinfo(arr.dtype)
        return np.clip(np.rint(luma), info.min, info.max).astype(arr.dtype), True
    return luma.astype(np.float32), True


def _invert(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """MONOCHROME1 -> MONOCHROME2 within the stored bit range (dtype kept)."""
    if arr.dtype.kind == "f":
        return arr.max() + arr.min() - arr
    bits = int(ds.get("BitsStored", ds.BitsAllocated) or ds.BitsAllocated)
    if arr.dtype.kind == "i":
        return np.invert(arr)  # -1 - x: maps [-2^(b-1), 2^(b-1)-1] onto itself, reversed
    top = (1 << bits) - 1
    return (top - np.minimum(arr, top)).astype(arr.dtype)
