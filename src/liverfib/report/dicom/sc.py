"""Overlay pictures as Secondary Capture in the source's study."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from liverfib.errors import InputError
from liverfib.report.dicom.codes import MANUFACTURER
from liverfib.report.dicom.source import complete_source, save_dataset, type2_empty

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["write_sc"]


def write_sc(
    source: Dataset,
    rgb: np.ndarray,
    path: str | Path,
    *,
    series_number: int = 903,
    description: str = "liverfib overlay (research use)",
) -> Dataset:
    """Write an ``(H, W, 3)`` uint8 overlay picture as a Secondary Capture in the source's study.

    The SC names the source image in SourceImageSequence (purpose: derived from).
    """
    import highdicom as hd
    from pydicom.dataset import Dataset as PydicomDataset
    from pydicom.uid import generate_uid

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"write_sc: expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    source = complete_source(source)
    orientation = tuple(str(v) for v in (source.get("PatientOrientation") or []))
    known = len(orientation) == 2 and all(re.fullmatch(r"[APLRHF]", v) for v in orientation)
    sc = hd.sc.SCImage.from_ref_dataset(
        source,
        pixel_array=rgb,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        patient_orientation=orientation if known else ("L", "F"),
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
    )
    if not known:
        sc.PatientOrientation = None  # type 2: the source does not say
    type2_empty(sc, "Laterality")
    sc.SeriesDescription = description
    ref = PydicomDataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    purpose = PydicomDataset()
    purpose.CodeValue, purpose.CodingSchemeDesignator = "121322", "DCM"
    purpose.CodeMeaning = "Source image for image processing operation"
    ref.PurposeOfReferenceCodeSequence = [purpose]
    sc.SourceImageSequence = [ref]
    save_dataset(sc, path)
    return sc
