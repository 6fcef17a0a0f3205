"""DICOM results with highdicom: masks as SEG, measurements as a TID 1500 SR, overlays as SC.

Every object references the source image (same study, new series) so that a PACS files it beside
the scan it describes. Each writer saves atomically (temporary file, then rename) and returns the
dataset; the ``read_*`` functions read a result back for validation, and :func:`run_dciodvfy`
runs Debian's dicom3tools validator when it is installed.

Codes: anatomy and units use SNOMED CT / DCM / UCUM; concepts that have no standard code (METAVIR
stage, stage probabilities, model attention region) use the private coding scheme ``99LIVERFIB``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liverfib._version import __version__
from liverfib.errors import InputError
from liverfib.io.dicom_dataset import read_dataset

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "Segment",
    "SEGMENT_KINDS",
    "dataset_from_array",
    "read_dicom_dataset",
    "read_seg_masks",
    "read_sr_findings",
    "run_dciodvfy",
    "save_dataset",
    "write_sc",
    "write_seg",
    "write_seg_series",
    "write_sr",
]

#: Private coding scheme for concepts without a standard code.
SCHEME = "99LIVERFIB"
MANUFACTURER = "liverfib (research use only)"
#: SR codes of the binary-task probabilities -> findings key.
_BINARY_CODES = {"GE_F2": "p_ge_f2", "GE_F3": "p_ge_f3", "IS_F4": "p_f4"}
_BINARY_MEANINGS = {
    "p_ge_f2": "Probability of METAVIR >= F2",
    "p_ge_f3": "Probability of METAVIR >= F3",
    "p_f4": "Probability of METAVIR F4 (cirrhosis)",
}

#: Segment kind -> (category (code, scheme, meaning), property type (code, scheme, meaning)).
SEGMENT_KINDS: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "liver": (("123037004", "SCT", "Anatomical Structure"), ("10200004", "SCT", "Liver")),
    "cam": (
        ("309825002", "SCT", "Spatial and Relational Concept"),
        ("CAM", SCHEME, "Model attention region (Grad-CAM, not anatomy)"),
    ),
    "fov": (
        ("309825002", "SCT", "Spatial and Relational Concept"),
        ("FOV", SCHEME, "Ultrasound field of view (analysed region)"),
    ),
}


@dataclass(frozen=True)
class Segment:
    """One segment of a SEG: a ``(H, W)`` bool mask on the source frame and what it shows."""

    label: str
    mask: np.ndarray
    kind: str = "liver"


def save_dataset(ds: Dataset, path: str | Path) -> Path:
    """Write ``ds`` as a DICOM Part 10 file; the file is either complete or untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        ds.save_as(tmp, enforce_file_format=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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
    _type2_empty(sc, "PatientOrientation", "Laterality")  # unknown for an uploaded picture
    sc.SeriesDescription = series_description
    return sc


def write_seg(
    source: Dataset,
    segments: Sequence[Segment],
    path: str | Path,
    *,
    series_number: int = 901,
    algorithm: str = "liverfib",
) -> Dataset:
    """Write a binary DICOM SEG of one or more ``(H, W)`` masks on a single-frame source image.

    Raises:
        InputError: no segments, a mask whose shape differs from the source, an unknown kind.
    """
    import highdicom as hd

    if not segments:
        raise InputError("write_seg: no segments given")
    source = _complete_source(source)
    rows, cols = int(source.Rows), int(source.Columns)
    if int(source.get("NumberOfFrames", 1) or 1) != 1:
        raise InputError("write_seg: multi-frame sources are not supported yet; pass one frame")
    planes = []
    descriptions = []
    for number, seg in enumerate(segments, start=1):
        if seg.kind not in SEGMENT_KINDS:
            raise InputError(f"unknown segment kind {seg.kind!r}; valid: {', '.join(SEGMENT_KINDS)}")
        if seg.mask.shape != (rows, cols):
            raise InputError(
                f"segment {seg.label!r}: mask shape {seg.mask.shape} differs from the source image {(rows, cols)}"
            )
        category, prop = SEGMENT_KINDS[seg.kind]
        planes.append(seg.mask.astype(bool))
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=seg.label,
                segmented_property_category=hd.sr.CodedConcept(*category),
                segmented_property_type=hd.sr.CodedConcept(*prop),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=hd.AlgorithmIdentificationSequence(
                    name=algorithm,
                    version=__version__,
                    family=hd.sr.CodedConcept("123109", "DCM", "Artificial Intelligence"),
                ),
            )
        )
    pixel_array = np.stack(planes, axis=-1)[None]  # (1, H, W, S)
    seg_ds = _binary_segmentation([source], pixel_array, descriptions, series_number)
    _type2_empty(seg_ds, "PatientOrientation")
    save_dataset(seg_ds, path)
    return seg_ds



def _binary_segmentation(sources: list[Dataset], pixel_array: np.ndarray, descriptions: list[Any],
                         series_number: int) -> Any:
    """A highdicom BINARY ``Segmentation`` of ``sources`` with liverfib's device and series fields."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="liverfib",
        software_versions=__version__,
        device_serial_number="0",
        omit_empty_frames=False,
        series_description="liverfib segmentation (research use)",
    )

def write_sr(
    source: Dataset,
    findings: Mapping[str, Any],
    path: str | Path,
    *,
    series_number: int = 902,
) -> Dataset:
    """Write a Comprehensive SR holding a TID 1500 measurement report.

    Args:
        source: the image the findings come from (evidence and source image of the group).
        findings: ``stage`` (e.g. ``"F2"``), ``probabilities`` ({stage: p}), optional
            ``p_ge_f2``/``p_ge_f3``/``p_f4``, ``liver_volume_ml``, ``liver_area_mm2``,
            ``stiffness_kpa``, ``model`` (name) — absent keys are left out, never written as NaN;
            ``synthetic`` (bool): the result comes from phantom data or a phantom-trained model, said in
            the series description and the algorithm name.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    source = _complete_source(source)

    def private(value: str, meaning: str) -> hd.sr.CodedConcept:
        return hd.sr.CodedConcept(value, SCHEME, meaning)

    unitless = hd.sr.CodedConcept("1", "UCUM", "no units")
    synthetic = bool(findings.get("synthetic"))
    model = str(findings.get("model", "liverfib")) + (" [SYNTHETIC]" if synthetic else "")
    algo = hd.sr.AlgorithmIdentification(name=model[:64], version=__version__)
    measurements = []
    for stage, p in dict(findings.get("probabilities", {})).items():
        measurements.append(
            hd.sr.Measurement(
                name=private(f"P_{stage}", f"Probability of METAVIR {stage}"),
                value=_finite(p, f"probability {stage}"),
                unit=unitless,
                algorithm_id=algo,
            )
        )
    for code, key in _BINARY_CODES.items():
        if findings.get(key) is not None:
            meaning = _BINARY_MEANINGS[key]
            measurements.append(
                hd.sr.Measurement(
                    name=private(code, meaning),
                    value=_finite(findings[key], key),
                    unit=unitless,
                    algorithm_id=algo,
                )
            )
    liver = [hd.sr.FindingSite(codes.SCT.Liver)]
    if findings.get("liver_volume_ml") is not None:
        measurements.append(
            hd.sr.Measurement(
                name=codes.SCT.Volume,
                value=_finite(findings["liver_volume_ml"], "liver_volume_ml"),
                unit=hd.sr.CodedConcept("ml", "UCUM", "milliliter"),
                finding_sites=liver,
            )
        )
    if findings.get("liver_area_mm2") is not None:
        measurements.append(
            hd.sr.Measurement(
                name=codes.SCT.Area,
                value=_finite(findings["liver_area_mm2"], "liver_area_mm2"),
                unit=hd.sr.CodedConcept("mm2", "UCUM", "square millimeter"),
                finding_sites=liver,
            )
        )
    if findings.get("stiffness_kpa") is not None:
        measurements.append(
            hd.sr.Measurement(
                name=private("STIFFNESS", "Mean liver stiffness"),
                value=_finite(findings["stiffness_kpa"], "stiffness_kpa"),
                unit=hd.sr.CodedConcept("kPa", "UCUM", "kilopascal"),
                finding_sites=liver,
            )
        )
    evaluations = []
    if findings.get("stage"):
        stage = str(findings["stage"])
        evaluations.append(
            hd.sr.QualitativeEvaluation(
                name=private("STAGE", "METAVIR fibrosis stage"),
                value=private(stage, f"METAVIR {stage}"),
            )
        )
    if not measurements and not evaluations:
        raise InputError("write_sr: findings hold nothing to report (no stage, probability or measurement)")
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier="liver fibrosis"),
        measurements=measurements or None,
        qualitative_evaluations=evaluations or None,
        algorithm_id=algo,
        finding_sites=liver,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
    )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name="liverfib", manufacturer_name=MANUFACTURER
        ),
    )
    procedure = {
        "US": hd.sr.CodedConcept("45036003", "SCT", "Ultrasonography of abdomen"),
        "MR": hd.sr.CodedConcept("241620005", "SCT", "MRI of abdomen"),
    }.get(str(source.get("Modality", "")), hd.sr.CodedConcept("363679005", "SCT", "Imaging"))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=procedure,
        imaging_measurements=[group],
    )
    sr = hd.sr.ComprehensiveSR(
        evidence=[source],
        content=report[0],
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        series_description="liverfib measurements (research use" + ("; SYNTHETIC)" if synthetic else ")"),
    )
    save_dataset(sr, path)
    return sr


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
    source = _complete_source(source)
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
    _type2_empty(sc, "Laterality")
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


def write_seg_series(
    sources: Sequence[Dataset],
    frames: np.ndarray,
    path: str | Path,
    *,
    label: str = "Liver",
    kind: str = "liver",
    series_number: int = 901,
    algorithm: str = "liverfib",
) -> Dataset:
    """Write a binary DICOM SEG of one segment over a series of single-frame source slices.

    Args:
        sources: the source slices (pixel data not needed), one per frame.
        frames: ``(N, Rows, Columns)`` mask, frame ``i`` on ``sources[i]``.

    Raises:
        InputError: frame count or size differs from the sources, unknown kind.
    """
    import highdicom as hd

    if kind not in SEGMENT_KINDS:
        raise InputError(f"unknown segment kind {kind!r}; valid: {', '.join(SEGMENT_KINDS)}")
    if not sources or frames.shape != (len(sources), int(sources[0].Rows), int(sources[0].Columns)):
        raise InputError(f"write_seg_series: mask {frames.shape} does not match {len(sources)} source slices")
    category, prop = SEGMENT_KINDS[kind]
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=label,
        segmented_property_category=hd.sr.CodedConcept(*category),
        segmented_property_type=hd.sr.CodedConcept(*prop),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=algorithm, version=__version__, family=hd.sr.CodedConcept("123109", "DCM", "Artificial Intelligence")
        ),
    )
    seg_ds = _binary_segmentation([_complete_source(s) for s in sources], frames.astype(bool), [description],
                                  series_number)
    save_dataset(seg_ds, path)
    return seg_ds


# ------------------------------------------------------------------------------------ read back
def read_seg_masks(path: str | Path) -> dict[str, np.ndarray]:
    """Read a SEG written by :func:`write_seg`: ``{segment label: (H, W) bool mask}``."""
    import highdicom as hd

    seg = hd.seg.segread(str(path))
    sop_uid = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    numbers = seg.get_segment_numbers()
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[sop_uid], segment_numbers=numbers, assert_missing_frames_are_empty=True
    )  # (1, H, W, S)
    return {
        seg.get_segment_description(n).segment_label: pixels[0, :, :, i].astype(bool)
        for i, n in enumerate(numbers)
    }


def read_sr_findings(path: str | Path) -> dict[str, Any]:
    """Read an SR written by :func:`write_sr` back into a findings dict (plus ``referenced_sop_uids``)."""
    import highdicom as hd

    sr = hd.sr.srread(str(path))
    groups = sr.content.get_image_measurement_groups()
    if not groups:
        raise InputError(f"{path}: SR holds no measurement group")
    out: dict[str, Any] = {"probabilities": {}}
    for m in groups[0].get_measurements():
        code, value = m.name.value, float(m.value)
        if code in _BINARY_CODES:
            out[_BINARY_CODES[code]] = value
        elif code.startswith("P_") and m.name.scheme_designator == SCHEME:
            out["probabilities"][code[2:]] = value
        elif m.name.meaning == "Volume":
            out["liver_volume_ml"] = value
        elif m.name.meaning == "Area":
            out["liver_area_mm2"] = value
        elif code == "STIFFNESS":
            out["stiffness_kpa"] = value
    for q in groups[0].get_qualitative_evaluations():
        if q.name.value == "STAGE":
            out["stage"] = q.value.value
    evidence = sr.get("CurrentRequestedProcedureEvidenceSequence", [])
    out["referenced_sop_uids"] = [
        inst.ReferencedSOPInstanceUID
        for study in evidence
        for series in study.ReferencedSeriesSequence
        for inst in series.ReferencedSOPSequence
    ]
    return out


def run_dciodvfy(path: str | Path) -> tuple[bool | None, list[str]]:
    """Validate a file with dicom3tools' ``dciodvfy``.

    Returns ``(None, [])`` when dciodvfy is not installed, else ``(no errors, error lines)``.
    """
    exe = shutil.which("dciodvfy")
    if exe is None:
        return None, []
    proc = subprocess.run([exe, "-new", str(path)], capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    errors = [ln.strip() for ln in lines if ln.startswith("Error")]
    return not errors, errors


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


def _complete_source(source: Dataset) -> Dataset:
    """A shallow copy of ``source`` with absent type-2 patient/study attributes added empty."""
    import copy

    missing = [kw for kw in _PATIENT_STUDY_TYPE2 if kw not in source]
    if not missing:
        return source
    ds = copy.copy(source)
    for kw in missing:
        setattr(ds, kw, None)
    return ds


def _type2_empty(ds: Dataset, *keywords: str) -> None:
    """Add type 2(C) attributes as empty (\"unknown\") where they are absent."""
    for kw in keywords:
        if kw not in ds:
            setattr(ds, kw, None)


def _finite(value: Any, what: str) -> float:
    v = float(value)
    if not np.isfinite(v):
        raise InputError(f"{what} is {v}; expected a finite number (leave it out instead)")
    return v


def _to_uint8(array: np.ndarray) -> np.ndarray:
    a = array.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return ((a - lo) * (255.0 / (hi - lo))).round().astype(np.uint8)
