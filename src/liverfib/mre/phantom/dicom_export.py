"""Phantom exams as scanner-style DICOM series: Siemens layout (four series in one flat folder,
stiffness in Pa with a Real World Value Mapping to kPa, a confidence series) or GE layout (three
series in sub-folders, stiffness in kPa through RescaleSlope, the 95 % confidence limit as an overlay)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.mre.phantom.anatomy import PIXEL_MM, SIZE, SLICE_GAP_MM, SLICE_THICKNESS_MM
from liverfib.mre.phantom.exam import PhantomSlices

#: ``ManufacturerModelName`` of phantom DICOM files; readers flag such exams synthetic.
PHANTOM_MODEL_NAME = "liverfib-phantom"


def stored_magnitude(exam: PhantomSlices) -> np.ndarray:
    """Magnitude ``(D, H, W)`` scaled to the 12-bit range the exports store."""
    return np.clip(exam.magnitude / max(float(np.percentile(exam.magnitude, 99.5)), 1e-6) * 3000, 0, 4095)


def _base_dataset(study: dict[str, Any], z: int, n_slices: int) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for key in ("StudyInstanceUID", "FrameOfReferenceUID", "PatientID", "PatientName", "StudyDate",
                "Manufacturer", "ManufacturerModelName"):
        setattr(ds, key, study[key])
    ds.Modality = "MR"
    ds.BodyPartExamined = "LIVER"
    ds.MagneticFieldStrength = 1.5
    ds.ImagingFrequency = 63.9
    ds.Rows = ds.Columns = SIZE
    ds.PixelSpacing = [PIXEL_MM, PIXEL_MM]
    ds.SliceThickness = SLICE_THICKNESS_MM
    ds.SpacingBetweenSlices = SLICE_GAP_MM
    loc = (z - (n_slices - 1) / 2) * SLICE_GAP_MM
    ds.SliceLocation = loc
    half = SIZE * PIXEL_MM / 2
    ds.ImagePositionPatient = [-half, -half, loc]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.InstanceNumber = z + 1
    ds.ImageComments = "SYNTHETIC phantom (liverfib), not a patient"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    return ds


def _series_writer(folder: Path, study: dict[str, Any], flat: bool):  # type: ignore[no-untyped-def]
    from pydicom.uid import generate_uid

    counter = {"n": 0}

    def write(number: int, desc: str, image_type: list[str], stack: np.ndarray, extra=None) -> None:  # type: ignore[no-untyped-def]
        uid = generate_uid()
        sub = folder if flat else folder / f"{number:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        n_slices = study["n_slices"]
        for k, plane in enumerate(stack):
            z = k % n_slices
            ds = _base_dataset(study, z, n_slices)
            ds.SeriesInstanceUID = uid
            ds.SeriesNumber = number
            ds.SeriesDescription = desc
            ds.ImageType = image_type
            ds.InstanceNumber = k + 1
            if k >= n_slices:  # wave images: several phase offsets per location
                ds.TemporalPositionIdentifier = k // n_slices + 1
            ds.PixelData = np.ascontiguousarray(plane.astype(np.uint16)).tobytes()
            if extra is not None:
                extra(ds, z)
            counter["n"] += 1
            name = f"IM_{counter['n']:04d}" if flat else f"I{k + 1:03d}.dcm"
            ds.save_as(sub / name, enforce_file_format=True)

    return write


def _rwvm(ds: Any) -> None:
    """Siemens-style stiffness: stored Pa, kPa through a Real World Value Mapping item."""
    from pydicom.dataset import Dataset

    units = Dataset()
    units.CodeValue = "kPa"
    units.CodingSchemeDesignator = "UCUM"
    units.CodeMeaning = "kilopascal"
    item = Dataset()
    item.LUTExplanation = "Stiffness"
    item.LUTLabel = "kPa"
    item.MeasurementUnitsCodeSequence = [units]
    item.RealWorldValueFirstValueMapped = 0
    item.RealWorldValueLastValueMapped = 65535
    item.RealWorldValueSlope = 0.001
    item.RealWorldValueIntercept = 0.0
    ds.RealWorldValueMappingSequence = [item]


def _overlay(mask: np.ndarray):  # type: ignore[no-untyped-def]
    """GE-style: an overlay plane on each stiffness image, 1 where confidence < 95 %."""
    from pydicom.pixels import pack_bits

    def extra(ds: Any, z: int) -> None:
        ds.RescaleSlope = 0.01
        ds.RescaleIntercept = 0.0
        ds.RescaleType = "KPA"
        ds.add_new(0x60000010, "US", SIZE)
        ds.add_new(0x60000011, "US", SIZE)
        ds.add_new(0x60000022, "LO", "Confidence < 95%")
        ds.add_new(0x60000040, "CS", "R")
        ds.add_new(0x60000050, "SS", [1, 1])
        ds.add_new(0x60000100, "US", 1)
        ds.add_new(0x60000102, "US", 0)
        ds.add_new(0x60003000, "OW", pack_bits(mask[z].astype(np.uint8).ravel()))

    return extra



def write_dicom_exam(exam: PhantomSlices, dicom_dir: Path, *, exam_id: str) -> None:
    """Write ``exam`` as the DICOM series of its vendor under ``dicom_dir``."""
    from pydicom.uid import generate_uid

    vendor = exam.vendor
    study = {
        "StudyInstanceUID": generate_uid(),
        "FrameOfReferenceUID": generate_uid(),
        "PatientID": f"PHANTOM-{exam_id}",
        "PatientName": "Phantom^MRE",
        "StudyDate": _dt.date(2026, 1, 1).strftime("%Y%m%d"),
        "Manufacturer": "SIEMENS" if vendor == "siemens" else "GE MEDICAL SYSTEMS",
        "ManufacturerModelName": PHANTOM_MODEL_NAME,
        "n_slices": exam.labels.shape[0],
    }
    write = _series_writer(dicom_dir, study, flat=vendor == "siemens")
    mag = stored_magnitude(exam)
    waves = np.clip((exam.waves.reshape(-1, SIZE, SIZE) + 1) * 2047.5, 0, 4095)
    stiff_pa = np.clip(np.round(exam.elastogram_kpa * 1000), 0, 65535)
    if vendor == "siemens":
        write(11, "ep2d_mre_MAG", ["ORIGINAL", "PRIMARY", "M", "ND"], mag)
        write(12, "ep2d_mre_WAVE", ["ORIGINAL", "PRIMARY", "P", "ND"], waves)
        write(13, "ep2d_mre_ELASTOGRAM", ["DERIVED", "PRIMARY", "ELASTOGRAM"], stiff_pa,
              extra=lambda ds, z: _rwvm(ds))
        write(14, "ep2d_mre_CONFIDENCE", ["DERIVED", "PRIMARY", "CONFIDENCE"], np.round(exam.confidence_pct))
    else:
        write(7, "MRE Magnitude", ["ORIGINAL", "PRIMARY", "OTHER"], mag)
        write(8, "MRE Wave Images", ["ORIGINAL", "PRIMARY", "OTHER"], waves)
        write(9, "MRE Stiffness", ["DERIVED", "SECONDARY", "OTHER"], np.round(exam.elastogram_kpa * 100),
              extra=_overlay(exam.confidence_pct < 95))
