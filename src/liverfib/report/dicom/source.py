"""Source datasets: read a DICOM source, wrap an uploaded picture as one, save a dataset atomically,
and fill the type-2 attributes that results copy from their source."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from liverfib.errors import InputError
from liverfib.io.atomic import atomic_write
from liverfib.io.dicom_dataset import read_dataset
from liverfib.report.dicom.codes import MANUFACTURER

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["complete_source", "dataset_from_array", "read_dicom_dataset", "save_dataset", "type2_empty"]


def save_dataset(ds: Dataset, path: str | Path) -> Path:
    """Write ``ds`` as a DICOM Part 10 file; the file is either complete or untouched."""
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        ds.save_as(fh, enforce_file_format=True)
    return path


def read_dicom_dataset(path: str | Path) -> Dataset:
    """Read a DICOM file fully (pixel data included) or raise :class:`InputError` saying why."""
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    try:
        ds = read_dataset(path)
        ds.pixel_array  # noqa: B018 - decode now so corrupt pixel data fails here, not later
    except InvalidDicomError:
        raise InputError(f"{path.name}: not a DICOM file (no DICM marker)") from None
    except AttributeError as exc:
        raise InputError(f"{path.name}: DICOM without usable pixel data ({exc})") from None
    except (EOFError, OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError) as exc:
        raise InputError(f"{path.name}: corrupt or truncated DICOM ({type(exc).__name__}: {exc})") from None
    for tag in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        if not ds.get(tag):
            raise InputError(f"{path.name}: DICOM lacks {tag}; cannot reference it from results")
    return ds


def dataset_from_array(
    array: np.ndarray,
    *,
    study_uid: str | None = None,
    series_description: str = "uploaded image",
) -> Dataset:
    """Wrap a gray ``(H, W)`` uint8 image (e.g. an uploaded PNG) as a Secondary Capture source.

    The new study has no patient identity; results can then reference it like any DICOM scan.
    """
    import highdicom as hd
    from pydicom.uid import generate_uid

    if array.ndim != 2:
        raise InputError(f"expected a gray (H, W) image, got shape {array.shape}")
    pixels = array if array.dtype == np.uint8 else _to_uint8(array)
    sc = hd.sc.SCImage(
        pixel_array=pixels,
        photometric_interpretation="MONOCHROME2",
        bits_allocated=8,
        coordinate_system="PATIENT",
        patient_orientation=("L", "F"),
        study_instance_uid=study_uid or generate_uid(),
        series_instance_uid=generate_uid(),
        series_number=1,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_id="ANONYMOUS",
        patient_name="Anonymous^",
    )
    type2_empty(sc, "PatientOrientation", "Laterality")  # unknown for an uploaded picture
    sc.SeriesDescription = series_description
    return sc


#: Patient/study attributes of type 2 that highdicom copies from the source; many scanners (and
#: de-identified files) leave some out.
_PATIENT_STUDY_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "AccessionNumber",
    "StudyID",
)


def complete_source(source: Dataset) -> Dataset:
    """A shallow copy of ``source`` with absent type-2 patient/study attributes added empty."""
    missing = [kw for kw in _PATIENT_STUDY_TYPE2 if kw not in source]
    if not missing:
        return source
    ds = copy.copy(source)
    for kw in missing:
        setattr(ds, kw, None)
    return ds


def type2_empty(ds: Dataset, *keywords: str) -> None:
    """Add type 2(C) attributes as empty (\"unknown\") where they are absent."""
    for kw in keywords:
        if kw not in ds:
            setattr(ds, kw, None)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    a = array.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return ((a - lo) * (255.0 / (hi - lo))).round().astype(np.uint8)
