"""Findings as a Comprehensive SR holding a TID 1500 measurement report, and reading them back."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liverfib._version import __version__
from liverfib.errors import InputError
from liverfib.report.dicom.codes import BINARY_CODES, BINARY_MEANINGS, MANUFACTURER, SCHEME
from liverfib.report.dicom.source import complete_source, save_dataset

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["read_sr_findings", "write_sr"]

#: Liver measurements: findings key -> (name: SCT keyword or private (code, meaning), UCUM unit).
_LIVER_MEASUREMENTS: dict[str, tuple[str | tuple[str, str], tuple[str, str]]] = {
    "liver_volume_ml": ("Volume", ("ml", "milliliter")),
    "liver_area_mm2": ("Area", ("mm2", "square millimeter")),
    "stiffness_kpa": (("STIFFNESS", "Mean liver stiffness"), ("kPa", "kilopascal")),
}


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
    from pydicom.uid import generate_uid

    source = complete_source(source)
    synthetic = bool(findings.get("synthetic"))
    model = str(findings.get("model", "liverfib")) + (" [SYNTHETIC]" if synthetic else "")
    algo = hd.sr.AlgorithmIdentification(name=model[:64], version=__version__)
    measurements = _probability_measurements(findings, algo) + _liver_measurements(findings)
    evaluations = _stage_evaluations(findings)
    if not measurements and not evaluations:
        raise InputError("write_sr: findings hold nothing to report (no stage, probability or measurement)")
    report = _measurement_report(source, measurements, evaluations, algo)
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
        if code in BINARY_CODES:
            out[BINARY_CODES[code]] = value
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


def _private(value: str, meaning: str) -> Any:
    import highdicom as hd

    return hd.sr.CodedConcept(value, SCHEME, meaning)


def _probability_measurements(findings: Mapping[str, Any], algo: Any) -> list[Any]:
    """Unitless measurements: P(stage) for each stage, then the binary-task probabilities present."""
    import highdicom as hd

    unitless = hd.sr.CodedConcept("1", "UCUM", "no units")
    named = [
        (_private(f"P_{stage}", f"Probability of METAVIR {stage}"), p, f"probability {stage}")
        for stage, p in dict(findings.get("probabilities", {})).items()
    ]
    named += [
        (_private(code, BINARY_MEANINGS[key]), findings[key], key)
        for code, key in BINARY_CODES.items()
        if findings.get(key) is not None
    ]
    return [
        hd.sr.Measurement(name=name, value=_finite(value, what), unit=unitless, algorithm_id=algo)
        for name, value, what in named
    ]


def _liver_measurements(findings: Mapping[str, Any]) -> list[Any]:
    """Liver volume, area and stiffness where present, each with the liver as finding site."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    out = []
    for key, (name, (unit, unit_meaning)) in _LIVER_MEASUREMENTS.items():
        if findings.get(key) is None:
            continue
        concept = getattr(codes.SCT, name) if isinstance(name, str) else _private(*name)
        out.append(
            hd.sr.Measurement(
                name=concept,
                value=_finite(findings[key], key),
                unit=hd.sr.CodedConcept(unit, "UCUM", unit_meaning),
                finding_sites=[hd.sr.FindingSite(codes.SCT.Liver)],
            )
        )
    return out


def _stage_evaluations(findings: Mapping[str, Any]) -> list[Any]:
    """The METAVIR stage as a qualitative evaluation (empty when there is no stage)."""
    import highdicom as hd

    if not findings.get("stage"):
        return []
    stage = str(findings["stage"])
    return [hd.sr.QualitativeEvaluation(name=_private("STAGE", "METAVIR fibrosis stage"),
                                        value=_private(stage, f"METAVIR {stage}"))]


def _measurement_report(source: Dataset, measurements: list[Any], evaluations: list[Any], algo: Any) -> Any:
    """The TID 1500 report: one measurement group on ``source``, observed by the liverfib device."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    liver = [hd.sr.FindingSite(codes.SCT.Liver)]
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
    return hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=procedure,
        imaging_measurements=[group],
    )


def _finite(value: Any, what: str) -> float:
    v = float(value)
    if not np.isfinite(v):
        raise InputError(f"{what} is {v}; expected a finite number (leave it out instead)")
    return v
