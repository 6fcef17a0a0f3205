"""Read DICOM files (ultrasound, MR, CT; single- and multi-frame) and DICOM series folders.

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
    * A series folder gives ``(D, H, W)``: slices sorted along the slice normal, then the voxel
      axes flipped/swapped towards patient L, P, S exactly as :func:`liverfib.io.nifti.read_nifti`
      does (:mod:`liverfib.io.orientation`), with ``spacing_mm = (z, y, x)`` and ``meta["affine"]``,
      the 4x4 NIfTI (RAS+) affine of that grid. The same scan therefore gives the same array and
      affine from DICOM and from NIfTI.
"""

from __future__ import annotations

import struct
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liverfib.errors import InputError
from liverfib.image import MODALITIES, Image
from liverfib.io.orientation import apply_ornt_zyx, reorient_to_lps
from liverfib.io.raster import MIN_SIDE

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "SeriesInfo",
    "has_dicom_marker",
    "list_dicom_series",
    "read_dicom",
    "read_dicom_series",
    "read_series_headers",
    "to_source_frames",
]

#: Modalities of DICOM objects that are not images to analyse (skipped when looking for a series).
_NON_IMAGE_MODALITIES = frozenset({"SEG", "SR", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "PR", "KO", "REG", "DOC"})

#: Tags copied into ``Image.meta`` when present (no patient-identifying tags).
META_TAGS = (
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "BodyPartExamined",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "PhotometricInterpretation",
    "BitsStored",
    "NumberOfFrames",
    "FrameTime",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "SliceLocation",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "MagneticFieldStrength",
)

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

#: Exceptions pydicom raises on malformed input (it has no single error class for this).
_PARSE_ERRORS = (
    EOFError,
    OSError,
    ValueError,
    struct.error,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
)

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
    ds = _read_dataset(path)
    return _decode(ds, path, frame=frame)


def read_dicom_series(folder: str | Path, *, series_uid: str | None = None) -> Image:
    """Read the one DICOM image series found anywhere below ``folder`` into a ``(D, H, W)`` volume.

    The folder is searched recursively (a study export with the series in a sub-folder works).
    Exactly one image series must be found, or ``series_uid`` must name one of them; SEG, SR,
    RTSTRUCT and other non-image objects are skipped and listed in ``meta["skipped"]`` with the
    files that are not DICOM.

    Slices are sorted by their position along the slice normal (ImagePositionPatient projected on
    the cross product of the ImageOrientationPatient row and column vectors), never by file name or
    InstanceNumber while positions are known. The volume is then reoriented (flips and axis swaps,
    no resampling) to the convention of :func:`liverfib.io.nifti.read_nifti`: axes towards L, P, S
    in ``(z, y, x)`` order, so one scan gives the same array from DICOM and from NIfTI. A folder
    holding a single multi-frame file is read as that file.

    Returns:
        ``(D, H, W)`` image with ``spacing_mm = (z, y, x)`` (``None`` if the files do not give it);
        where positions are known ``meta["affine"]`` (RAS+, voxel ``(x, y, z)`` -> mm),
        ``meta["native_affine"]`` (the same for the stack in slice order: x = column, y = row,
        z = slice) and ``meta["files"]``/``meta["sop_instance_uids"]`` in slice order;
        :func:`to_source_frames` maps an array on the volume grid back onto those slices.

    Raises:
        InputError: empty folder, no image series, several series without ``series_uid`` (each is
            listed with UID, description, modality and number of slices), unknown ``series_uid``,
            inconsistent slice grids, duplicate slice positions, or any unreadable DICOM file (named).
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise InputError(f"{folder}: expected a folder holding one DICOM series, got a file")
    series, skipped, n_files = list_dicom_series(folder)
    if n_files == 0:
        raise InputError(f"{folder}: empty folder, expected the DICOM files of one series")
    if not series:
        what = ", ".join(f"{name} ({why})" for name, why in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        raise InputError(f"{folder}: no DICOM images in folder ({n_files} files: {what}{more})")
    chosen = _choose_series(folder, series, series_uid)
    if len(series) > 1:
        skipped = [*skipped, *((_rel(f, folder), f"series {s.uid}") for s in series if s is not chosen for f in s.files)]

    datasets: list[tuple[Path, Dataset]] = []
    for f in chosen.files:
        ds = _read_dataset(f)
        if not _has_pixel_data(ds):
            skipped.append((_rel(f, folder), "no pixel data"))
            continue
        datasets.append((f, ds))
    if not datasets:
        raise InputError(f"{folder}: series {chosen.uid} holds no image with pixel data")

    multi = [f for f, ds in datasets if _n_frames(ds) > 1]
    if multi:
        if len(datasets) == 1:
            image = _decode(datasets[0][1], datasets[0][0], frame=None)
            return image.with_array(image.array, meta={**image.meta, "skipped": skipped})
        raise InputError(
            f"{folder}: holds {len(multi)} multi-frame files ({_names(multi)}) among {len(datasets)} "
            "DICOM files; read multi-frame files one by one with read_dicom"
        )
    _check_same_grid(folder, datasets)
    ordered, positions, sorted_by = _sort_slices(folder, datasets)

    slices = [_decode(ds, f, frame=None) for f, ds in ordered]
    arrays = [s.array for s in slices]
    dtype = np.float32 if any(a.dtype.kind == "f" for a in arrays) else np.result_type(*arrays)
    volume = np.stack([a.astype(dtype, copy=False) for a in arrays])

    first = slices[0]
    meta: dict[str, Any] = {
        **first.meta,
        "n_slices": len(slices),
        "files": [_rel(f, folder) for f, _ in ordered],
        "sop_instance_uids": [str(ds.get("SOPInstanceUID", "")) for _, ds in ordered],
        "sorted_by": sorted_by,
        "skipped": skipped,
        "is_sequence": False,
        "n_series_found": len(series),
    }
    meta["colour"] = any(s.meta.get("colour", False) for s in slices)
    slice_mm = _slice_spacing(folder, positions, ordered[0][1], meta)
    pixel_mm = first.meta.get("pixel_spacing_mm")
    spacing = (slice_mm, *pixel_mm) if slice_mm is not None and pixel_mm is not None else None
    if positions is not None and spacing is not None:
        native_affine = _series_affine(ordered, positions, spacing)
        zooms_xyz = [float(spacing[2]), float(spacing[1]), float(spacing[0])]
        volume, affine, spacing, transform = reorient_to_lps(volume.T, native_affine, zooms_xyz)
        meta["affine"] = affine
        meta["native_affine"] = native_affine
        meta["native_ornt"] = transform.tolist()
        meta["axcodes"] = _axcodes(affine)
    return Image(array=volume, spacing_mm=spacing, modality=first.modality, path=folder, meta=meta)


def to_source_frames(array: np.ndarray, image: Image) -> np.ndarray:
    """Map ``array`` (on the grid of ``image``, a volume from :func:`read_dicom_series`) back onto
    the source slices: ``(n_slices, Rows, Columns)`` in the order of ``image.meta["files"]``.

    Raises:
        InputError: shapes differ.
    """
    if array.shape != image.shape:
        raise InputError(f"array shape {array.shape} differs from the volume shape {image.shape}")
    transform = image.meta.get("native_ornt")
    if transform is None:  # never reoriented: already in slice order
        return np.ascontiguousarray(array)
    return apply_ornt_zyx(array, _invert_ornt(np.asarray(transform, dtype=float)))


def read_series_headers(image: Image) -> list[Dataset]:
    """The headers (no pixel data) of the slices of a volume from :func:`read_dicom_series`, in the
    order of ``image.meta["files"]`` (the order of :func:`to_source_frames`).

    Raises:
        InputError: ``image`` is not a DICOM series volume, or a file is gone or unreadable.
    """
    files = image.meta.get("files")
    if image.path is None or not image.path.is_dir() or not files or image.meta.get("format") != "DICOM":
        raise InputError(f"{image.name}: not a volume read from a DICOM series folder")
    return [_read_header(image.path / f) for f in files]


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found below a folder: its UID, description, modality and files."""

    uid: str
    description: str
    modality: str
    files: tuple[Path, ...]

    def describe(self, root: Path) -> str:
        """``UID 'description' (CT, 11 slices, in sub/folder)``."""
        parents = sorted({_rel(f.parent, root) for f in self.files})
        where = parents[0] if len(parents) == 1 else f"{len(parents)} folders"
        desc = f" {self.description!r}" if self.description else ""
        n = len(self.files)
        return f"{self.uid}{desc} ({self.modality or '?'}, {n} slice{'s' if n != 1 else ''}, in {where})"


def list_dicom_series(folder: str | Path) -> tuple[list[SeriesInfo], list[tuple[str, str]], int]:
    """Image series anywhere below ``folder`` (headers only; pixel data is not read).

    Returns:
        ``(series, skipped, n_files)``: series sorted by SeriesNumber then UID; ``skipped`` lists
        ``(relative path, reason)`` for files that are not DICOM or not images (SEG, SR, ...);
        ``n_files`` counts every non-hidden file seen.

    Raises:
        InputError: a DICOM file whose header cannot be parsed (named).
    """
    folder = Path(folder)
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    groups: dict[str, list[Path]] = defaultdict(list)
    info: dict[str, tuple[str, str, int]] = {}
    skipped: list[tuple[str, str]] = []
    for f in files:
        if not has_dicom_marker(f):
            skipped.append((_rel(f, folder), "not DICOM"))
            continue
        ds = _read_header(f)
        modality = str(ds.get("Modality", "") or "").strip().upper()
        if modality in _NON_IMAGE_MODALITIES or ds.get("Rows") is None:
            kind = modality if modality in _NON_IMAGE_MODALITIES else "no pixel data"
            skipped.append((_rel(f, folder), kind if kind == "no pixel data" else f"{kind}, not an image"))
            continue
        uid = str(ds.get("SeriesInstanceUID", "") or "<no SeriesInstanceUID>")
        groups[uid].append(f)
        if uid not in info:
            try:
                number = int(ds.get("SeriesNumber", 0) or 0)
            except (TypeError, ValueError):
                number = 0
            info[uid] = (str(ds.get("SeriesDescription", "") or ""), modality, number)
    series = [SeriesInfo(uid, info[uid][0], info[uid][1], tuple(fs)) for uid, fs in groups.items()]
    series.sort(key=lambda s: (info[s.uid][2], s.uid))
    return series, skipped, len(files)


# --------------------------------------------------------------------------------------------------
# Reading and checking one file
# --------------------------------------------------------------------------------------------------


def has_dicom_marker(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _read_dataset(path: Path) -> Dataset:
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
    except _PARSE_ERRORS as exc:
        raise InputError(f"{path}: corrupt or truncated DICOM ({_one_line(exc)})") from None

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


def _has_pixel_data(ds: Dataset) -> bool:
    return any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


def _n_frames(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def _check_decodable(ds: Dataset, path: Path) -> None:
    """Required image tags present, sizes sane and a decoder available for the transfer syntax."""
    from pydicom.pixels import get_decoder

    if not _has_pixel_data(ds):
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


def _decode(ds: Dataset, path: Path, *, frame: int | None) -> Image:
    """Pixel array of a parsed dataset, gray, inverted/rescaled, with spacing and metadata."""
    from pydicom.pixels import apply_color_lut, pixel_array

    _check_decodable(ds, path)
    n_frames = _n_frames(ds)
    if frame is not None and not 0 <= frame < n_frames:
        raise InputError(
            f"{path}: frame {frame} out of range; the file has {n_frames} "
            f"frame{'s' if n_frames != 1 else ''} (0..{n_frames - 1})"
        )
    try:
        arr = pixel_array(ds, index=frame if n_frames > 1 else None)
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
        if photometric == "PALETTE COLOR":
            arr = apply_color_lut(arr, ds)
    except _PARSE_ERRORS as exc:
        raise InputError(f"{path}: corrupt or truncated pixel data ({_one_line(exc)})") from None

    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    channels = 3 if photometric == "PALETTE COLOR" else samples
    colour = False
    if channels > 1:
        arr, colour = _to_gray(arr)

    inverted = photometric == "MONOCHROME1"
    if inverted:
        arr = _invert(arr, ds)

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

    modality_tag = str(ds.get("Modality", "") or "").strip().upper()
    modality = modality_tag if modality_tag in MODALITIES else "OT"
    pixel_mm, source = _pixel_spacing(ds)
    meta = _tags(ds)
    meta.update(
        {
            "format": "DICOM",
            "TransferSyntaxUID": str(ds.file_meta.TransferSyntaxUID),
            "channels": channels,
            "colour": colour,
            "inverted": inverted,
            "rescaled": rescaled,
            "n_frames": n_frames,
            "bit_depth": int(ds.get("BitsStored", ds.BitsAllocated) or ds.BitsAllocated),
            "pixel_spacing_mm": pixel_mm,
            "spacing_source": source,
        }
    )

    spacing: tuple[float, ...] | None = pixel_mm
    if arr.ndim == 3:  # all frames of a multi-frame file
        slice_mm = _multiframe_slice_spacing(ds) if modality in ("MR", "CT") else None
        meta["is_sequence"] = slice_mm is None
        if pixel_mm is not None:
            spacing = (slice_mm if slice_mm is not None else 0.0, *pixel_mm)
    else:
        meta["is_sequence"] = False
        if frame is not None:
            meta["frame"] = frame
    return Image(array=np.ascontiguousarray(arr), spacing_mm=spacing, modality=modality, path=path, meta=meta)


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


def _positive_pair(value: Any) -> tuple[float, float] | None:
    try:
        pair = (float(value[0]), float(value[1]))
    except (TypeError, ValueError, IndexError):
        return None
    if all(np.isfinite(v) and v > 0 for v in pair):
        return pair
    return None


def _pixel_spacing(ds: Dataset) -> tuple[tuple[float, float] | None, str | None]:
    """(row, col) spacing in mm and the tag it came from."""
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):
        pair = _positive_pair(ds.get(tag))
        if pair is not None:
            return pair, tag
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        measures = shared[0].get("PixelMeasuresSequence")
        if measures:
            pair = _positive_pair(measures[0].get("PixelSpacing"))
            if pair is not None:
                return pair, "SharedFunctionalGroupsSequence.PixelSpacing"
    regions = ds.get("SequenceOfUltrasoundRegions") or []
    candidates = [
        r for r in regions if r.get("PhysicalUnitsXDirection") == 3 and r.get("PhysicalUnitsYDirection") == 3
    ]
    candidates.sort(key=lambda r: 0 if r.get("RegionSpatialFormat") == 1 else 1)  # 2D tissue first
    for region in candidates:
        try:
            dy, dx = abs(float(region.PhysicalDeltaY)), abs(float(region.PhysicalDeltaX))
        except (AttributeError, TypeError, ValueError):
            continue
        if dx > 0 and dy > 0 and np.isfinite(dx) and np.isfinite(dy):
            return (dy * 10.0, dx * 10.0), "SequenceOfUltrasoundRegions"  # cm -> mm
    return None, None


def _multiframe_slice_spacing(ds: Dataset) -> float | None:
    for source in (ds, *(m for m in _shared_measures(ds))):
        for tag in ("SpacingBetweenSlices", "SliceThickness"):
            value = source.get(tag)
            try:
                if value is not None and float(value) > 0:
                    return float(value)
            except (TypeError, ValueError):
                continue
    return None


def _shared_measures(ds: Dataset) -> list[Dataset]:
    shared = ds.get("SharedFunctionalGroupsSequence")
    if not shared:
        return []
    return list(shared[0].get("PixelMeasuresSequence") or [])


def _plain(value: Any) -> Any:
    """pydicom value -> plain Python (str, int, float, list)."""
    from pydicom.multival import MultiValue
    from pydicom.valuerep import IS, DSdecimal, DSfloat

    if isinstance(value, MultiValue | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, DSfloat | DSdecimal):
        return float(value)
    if isinstance(value, IS):
        return int(value)
    if isinstance(value, int | float):
        return value
    return str(value)


def _tags(ds: Dataset) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for keyword in META_TAGS:
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        try:
            meta[keyword] = _plain(value)
        except (TypeError, ValueError):
            meta[keyword] = str(value)
    return meta


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


def _names(paths: list[Path], limit: int = 3) -> str:
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


# --------------------------------------------------------------------------------------------------
# Series
# --------------------------------------------------------------------------------------------------


def _choose_series(folder: Path, series: list[SeriesInfo], series_uid: str | None) -> SeriesInfo:
    """The series named by ``series_uid``, else the only one; several without a UID is an error."""
    listed = "; ".join(s.describe(folder) for s in series)
    if series_uid is not None:
        for s in series:
            if s.uid == series_uid:
                return s
        raise InputError(f"{folder}: no series with UID {series_uid}; found {len(series)}: {listed}")
    if len(series) > 1:
        raise InputError(
            f"{folder}: holds {len(series)} DICOM image series, pass --series UID to pick one: {listed}"
        )
    return series[0]


def _read_header(path: Path) -> Dataset:
    """The header of a DICOM file (no pixel data), or :class:`InputError` naming the file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        raise InputError(f"{path}: not a DICOM file (no 'DICM' marker at byte 128)") from None
    except _PARSE_ERRORS as exc:
        raise InputError(f"{path}: corrupt or truncated DICOM ({_one_line(exc)})") from None


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as text ('.' for the root itself)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _invert_ornt(transform: np.ndarray) -> np.ndarray:
    """The nibabel orientation transform that undoes ``transform``."""
    inverse = np.zeros_like(transform)
    for old_axis, (new_axis, flip) in enumerate(transform):
        inverse[int(new_axis)] = (old_axis, flip)
    return inverse


def _axcodes(affine: np.ndarray) -> tuple[str, ...]:
    from nibabel.orientations import aff2axcodes

    return tuple(str(c) for c in aff2axcodes(affine))


def _grid_key(ds: Dataset) -> tuple[Any, ...]:
    iop = ds.get("ImageOrientationPatient")
    iop_key = tuple(round(float(v), 3) for v in iop) if iop is not None and len(iop) == 6 else None
    ps = _positive_pair(ds.get("PixelSpacing"))
    ps_key = tuple(round(v, 4) for v in ps) if ps is not None else None
    return (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0), iop_key, ps_key)


def _check_same_grid(folder: Path, datasets: list[tuple[Path, Dataset]]) -> None:
    groups: dict[tuple[Any, ...], list[Path]] = defaultdict(list)
    for f, ds in datasets:
        groups[_grid_key(ds)].append(f)
    if len(groups) > 1:
        listed = "; ".join(
            f"{len(fs)} files {cols}x{rows}"
            f"{f' orientation {list(iop)}' if iop is not None else ''}"
            f"{f' spacing {list(ps)} mm' if ps is not None else ''} (e.g. {fs[0].name})"
            for (rows, cols, iop, ps), fs in groups.items()
        )
        raise InputError(
            f"{folder}: slices do not share one grid ({listed}); a series folder must hold slices "
            "of one size and orientation"
        )


def _sort_slices(
    folder: Path, datasets: list[tuple[Path, Dataset]]
) -> tuple[list[tuple[Path, Dataset]], np.ndarray | None, str]:
    """Order slices along the normal (positions in mm) or, failing that, by InstanceNumber."""
    have_geometry = all(
        ds.get("ImagePositionPatient") is not None and ds.get("ImageOrientationPatient") is not None
        for _, ds in datasets
    )
    if have_geometry:
        iop = np.asarray([float(v) for v in datasets[0][1].ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        pos = np.asarray([np.dot([float(v) for v in ds.ImagePositionPatient], normal) for _, ds in datasets])
        order = np.argsort(pos, kind="stable")
        ordered = [datasets[i] for i in order]
        positions = pos[order]
        dup = np.flatnonzero(np.diff(positions) < 1e-3)
        if dup.size:
            a, b = ordered[dup[0]][0].name, ordered[dup[0] + 1][0].name
            raise InputError(
                f"{folder}: {a} and {b} lie at the same slice position ({positions[dup[0]]:.3f} mm; "
                f"{dup.size} duplicate{'s' if dup.size > 1 else ''} in all); the folder may hold "
                "several echoes, phases or time points - put each in its own folder"
            )
        return ordered, positions, "ImagePositionPatient"
    numbers = [ds.get("InstanceNumber") for _, ds in datasets]
    if all(n is not None for n in numbers):
        counts = Counter(int(n) for n in numbers)
        repeated = [n for n, c in counts.items() if c > 1]
        if repeated:
            raise InputError(
                f"{folder}: no ImagePositionPatient and InstanceNumber {repeated[0]} repeats; "
                "cannot order the slices"
            )
        order = np.argsort([int(n) for n in numbers], kind="stable")
        return [datasets[i] for i in order], None, "InstanceNumber"
    return sorted(datasets, key=lambda item: item[0].name), None, "file name"


def _slice_spacing(
    folder: Path, positions: np.ndarray | None, first: Dataset, meta: dict[str, Any]
) -> float | None:
    """Slice spacing in mm from positions (median step), else SpacingBetweenSlices/SliceThickness."""
    if positions is not None and positions.size > 1:
        steps = np.diff(positions)
        step = float(np.median(steps))
        if np.ptp(steps) > max(0.01, 0.01 * step):
            meta["slice_spacing_uneven"] = True
            meta["slice_steps_mm"] = (float(steps.min()), float(steps.max()))
            warnings.warn(
                f"{folder}: uneven slice spacing ({steps.min():.3f} to {steps.max():.3f} mm); using "
                f"the median {step:.3f} mm. A slice may be missing.",
                stacklevel=3,
            )
        return step
    return _multiframe_slice_spacing(first)


def _series_affine(
    ordered: list[tuple[Path, Dataset]], positions: np.ndarray, spacing: tuple[float, ...]
) -> np.ndarray:
    """4x4 RAS+ affine from voxel index (x=col, y=row, z=slice) to mm (NIfTI convention)."""
    first = ordered[0][1]
    iop = np.asarray([float(v) for v in first.ImageOrientationPatient])
    row_dir, col_dir = iop[:3], iop[3:]
    origin = np.asarray([float(v) for v in first.ImagePositionPatient])
    if len(ordered) > 1:
        last = np.asarray([float(v) for v in ordered[-1][1].ImagePositionPatient])
        slice_step = (last - origin) / (len(ordered) - 1)
    else:
        slice_step = np.cross(row_dir, col_dir) * spacing[0]
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing[2]  # along a row = increasing column index
    lps[:3, 1] = col_dir * spacing[1]  # along a column = increasing row index
    lps[:3, 2] = slice_step
    lps[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # DICOM LPS -> NIfTI RAS
