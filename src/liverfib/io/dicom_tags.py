"""DICOM header helpers shared by the file and series readers: marker, headers, tags, spacing.

pydicom is imported inside the functions so that ``import liverfib.io`` stays light.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liverfib.errors import InputError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "META_TAGS",
    "PARSE_ERRORS",
    "has_dicom_marker",
    "has_pixel_data",
    "header_meta",
    "multiframe_slice_spacing",
    "n_frames",
    "one_line",
    "pixel_spacing",
    "positive_pair",
    "read_header",
]

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

#: Exceptions pydicom raises on malformed input (it has no single error class for this).
PARSE_ERRORS = (
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


def has_dicom_marker(path: Path) -> bool:
    """True when ``path`` is a readable file with ``DICM`` at byte 128 (DICOM Part 10)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def read_header(path: Path) -> Dataset:
    """The header of a DICOM file (no pixel data), or :class:`InputError` naming the file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        raise InputError(f"{path}: not a DICOM file (no 'DICM' marker at byte 128)") from None
    except PARSE_ERRORS as exc:
        raise InputError(f"{path}: corrupt or truncated DICOM ({one_line(exc)})") from None


def has_pixel_data(ds: Dataset) -> bool:
    """True when the dataset holds (integer or float) pixel data."""
    return any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


def n_frames(ds: Dataset) -> int:
    """NumberOfFrames, at least 1 (1 when absent or unreadable)."""
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def positive_pair(value: Any) -> tuple[float, float] | None:
    """Two finite positive floats from a 2-value tag, else ``None``."""
    try:
        pair = (float(value[0]), float(value[1]))
    except (TypeError, ValueError, IndexError):
        return None
    if all(np.isfinite(v) and v > 0 for v in pair):
        return pair
    return None


def pixel_spacing(ds: Dataset) -> tuple[tuple[float, float] | None, str | None]:
    """(row, col) spacing in mm and the tag it came from."""
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):
        pair = positive_pair(ds.get(tag))
        if pair is not None:
            return pair, tag
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        measures = shared[0].get("PixelMeasuresSequence")
        if measures:
            pair = positive_pair(measures[0].get("PixelSpacing"))
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


def multiframe_slice_spacing(ds: Dataset) -> float | None:
    """SpacingBetweenSlices, else SliceThickness (top level, then shared pixel measures), in mm."""
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


def header_meta(ds: Dataset) -> dict[str, Any]:
    """The :data:`META_TAGS` present in ``ds``, as plain Python values."""
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


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (at most 300 characters), else its type name."""
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__
