"""Read an MRE exam exported from the scanner: magnitude, wave, stiffness and confidence series.

An exam folder holds DICOM files (flat, or one sub-folder per series, any file names). Series are
grouped by SeriesInstanceUID and given a role from SeriesDescription and ImageType:

=============  ====================================================================================
role           recognised by (case-insensitive)
=============  ====================================================================================
confidence     description contains ``CONF`` or ImageType contains ``CONFIDENCE``
wave           description contains ``WAVE`` or ``PHASE``
stiffness      description contains ``STIFF``, ``ELASTOGRAM``, ``ELASTO_GRAY`` or ``KPA``, or ImageType
               contains ``ELASTOGRAM``
magnitude      description contains ``MAG``
=============  ====================================================================================

Stiffness is converted to kPa from, in this order: a Real World Value Mapping item whose units code
is ``kPa`` or ``Pa`` (Siemens-style); RescaleSlope/Intercept with RescaleType ``KPA``/``PA``
(GE-style); or the ``stiffness_units`` argument when the files say nothing. Confidence comes from a
confidence series (percent 0-100, fraction 0-1 or a 0/1 mask) or, failing that, from an overlay
plane (60xx,3000) on the stiffness images that marks the area *below* the confidence limit
(GE-style cross-hatching); then the map is 0 % under the overlay and 100 % elsewhere.
Colour (RGB) elastograms carry no kPa and are skipped.

Several exams under one folder: :func:`read_mre_exams` finds every exam below a folder (one per
DICOM StudyInstanceUID, and every NIfTI exam folder, see :mod:`liverfib.mre.nifti`) and reads each;
``liverfib mre`` then measures every exam (one row each). Inside one study a second stiffness or
confidence series is an error that lists the series (liverfib does not guess which one to measure).

An exam is flagged ``synthetic`` when its files say so: DICOM ``ManufacturerModelName``
``liverfib-phantom`` or ``SYNTHETIC`` in ``ImageComments``, or a ``SYNTHETIC.txt`` beside NIfTI volumes.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import InputError
from liverfib.image import Image
from liverfib.io.dicom_dataset import read_dataset
from liverfib.io.dicom_tags import has_dicom_marker
from liverfib.mre.exam import STIFFNESS_UNITS, MreExam, check_stiffness_units
from liverfib.mre.nifti import is_nifti_exam, read_mre_nifti
from liverfib.mre.phantom import PHANTOM_MODEL_NAME

__all__ = ["MreExam", "read_mre_exam", "read_mre_exams", "ROLES"]

ROLES = ("magnitude", "wave", "stiffness", "confidence")


def _role(desc: str, image_type: list[str]) -> str | None:
    d = desc.upper()
    it = " ".join(str(v) for v in image_type).upper()
    if "CONF" in d or "CONFIDENCE" in it:
        return "confidence"
    if "WAVE" in d or "PHASE" in d:
        return "wave"
    if any(k in d for k in ("STIFF", "ELASTOGRAM", "ELASTO_GRAY", "KPA")) or "ELASTOGRAM" in it:
        return "stiffness"
    if "MAG" in d:
        return "magnitude"
    return None


def _location(ds: Any) -> float:
    ipp = getattr(ds, "ImagePositionPatient", None)
    iop = getattr(ds, "ImageOrientationPatient", None)
    if ipp is not None and iop is not None and len(ipp) == 3 and len(iop) == 6:
        normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
        return float(np.dot(normal, np.asarray(ipp, float)))
    if "SliceLocation" in ds:
        return float(ds.SliceLocation)
    return float(getattr(ds, "InstanceNumber", 0))


def _stiffness_scale(ds: Any, units: str | None, desc: str) -> tuple[float, float, str]:
    """(slope, intercept, how) mapping stored values to kPa."""
    for item in getattr(ds, "RealWorldValueMappingSequence", []) or []:
        codes = getattr(item, "MeasurementUnitsCodeSequence", []) or []
        code = str(codes[0].CodeValue).upper() if codes and "CodeValue" in codes[0] else ""
        if code in STIFFNESS_UNITS:
            f = STIFFNESS_UNITS[code]
            return float(item.RealWorldValueSlope) * f, float(item.RealWorldValueIntercept) * f, "rwvm"
    rtype = str(getattr(ds, "RescaleType", "")).upper()
    if rtype in STIFFNESS_UNITS:
        f = STIFFNESS_UNITS[rtype]
        return float(getattr(ds, "RescaleSlope", 1)) * f, float(getattr(ds, "RescaleIntercept", 0)) * f, "rescale"
    if units is not None:
        f = STIFFNESS_UNITS[units.upper()]
        return float(getattr(ds, "RescaleSlope", 1)) * f, float(getattr(ds, "RescaleIntercept", 0)) * f, "user"
    raise InputError(
        f"stiffness series '{desc}' does not give its units (no Real World Value Mapping with kPa/Pa, "
        f"RescaleType '{rtype or '-'}'); pass --stiffness-units kPa or Pa"
    )


def _summary(groups: dict[str, list[tuple[Path, Any]]]) -> list[dict[str, Any]]:
    out = []
    for items in groups.values():
        ds = items[0][1]
        desc = str(getattr(ds, "SeriesDescription", ""))
        out.append({
            "series_number": int(getattr(ds, "SeriesNumber", 0) or 0),
            "description": desc,
            "role": _role(desc, list(getattr(ds, "ImageType", []) or [])),
            "images": len(items),
            "photometric": str(getattr(ds, "PhotometricInterpretation", "")),
        })
    return sorted(out, key=lambda s: s["series_number"])


def _found(series: list[dict[str, Any]]) -> str:
    if not series:
        return "no DICOM series"
    return "; ".join(f"#{s['series_number']} '{s['description']}' ({s['images']} images, role "
                     f"{s['role'] or 'unknown'})" for s in series)


def _stack(items: list[tuple[Path, Any]], exam_dir: Path) -> tuple[list[float], list[Any]]:
    """One dataset per slice location (the first by InstanceNumber), sorted by location."""
    by_loc: dict[float, Any] = {}
    for _, ds in sorted(items, key=lambda it: int(getattr(it[1], "InstanceNumber", 0) or 0)):
        by_loc.setdefault(round(_location(ds), 1), ds)
    locs = sorted(by_loc)
    return locs, [by_loc[loc] for loc in locs]


def _pixels(ds: Any, path_hint: str) -> np.ndarray:
    try:
        return np.asarray(ds.pixel_array, dtype=np.float32)
    except Exception as exc:  # pydicom raises many kinds on bad pixel data
        raise InputError(f"{path_hint}: cannot decode pixel data ({type(exc).__name__}: {exc})") from None


def read_mre_exam(exam_dir: str | Path, *, stiffness_units: str | None = None) -> MreExam:
    """Read the one MRE exam under ``exam_dir`` (DICOM or NIfTI; see the module docstring).

    Raises:
        InputError: as :func:`read_mre_exams`, or the folder holds several exams (they are listed).
    """
    exams = read_mre_exams(exam_dir, stiffness_units=stiffness_units)
    if len(exams) > 1:
        raise InputError(f"{exam_dir}: holds {len(exams)} MRE exams ({', '.join(e.exam_id for e in exams)}); "
                         "pass one exam folder")
    return exams[0]


def read_mre_exams(root: str | Path, *, stiffness_units: str | None = None) -> list[MreExam]:
    """Every MRE exam below ``root``: NIfTI exam folders, then DICOM studies (by StudyInstanceUID).

    Raises:
        InputError: not a folder, no stiffness series, no confidence (series or overlay), slice
            locations that do not match between series, two stiffness/confidence series in one
            study, unreadable pixels. The message lists the series found.
    """
    root = Path(root)
    check_stiffness_units(stiffness_units)
    if not root.is_dir():
        raise InputError(f"{root}: expected an MRE exam folder holding DICOM series or NIfTI volumes, "
                         f"got {'a file' if root.exists() else 'nothing (not found)'}")
    nifti_dirs = sorted({p.parent for pattern in ("stiffness.nii.gz", "stiffness.nii") for p in root.rglob(pattern)
                         if is_nifti_exam(p.parent)})
    exams = [read_mre_nifti(d, stiffness_units=stiffness_units, exam_id=_exam_id(root, d)) for d in nifti_dirs]
    studies: dict[str, dict[str, list[tuple[Path, Any]]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or not has_dicom_marker(path):
            continue
        if any(d in path.parents for d in nifti_dirs):
            continue
        try:
            ds = read_dataset(path)
        except Exception as exc:  # malformed file: name it
            raise InputError(f"{path}: unreadable DICOM ({type(exc).__name__}: {exc})") from None
        if "PixelData" not in ds:
            continue
        study = str(getattr(ds, "StudyInstanceUID", "") or path.parent)
        studies[study][str(getattr(ds, "SeriesInstanceUID", path.parent))].append((path, ds))
    if not exams and not studies:
        raise InputError(f"{root}: not a recognised MRE layout, no DICOM series and no stiffness.nii.gz found")
    for study_uid, groups in studies.items():
        folders = [p.parent for items in groups.values() for p, _ in items]
        common = Path(*_common_parts(folders))
        name = _exam_id(root, common)
        if any(e.exam_id == name for e in exams) or sum(1 for g in studies.values() if _common_parts(
                [p.parent for items in g.values() for p, _ in items]) == _common_parts(folders)) > 1:
            name = f"{name}#{study_uid[-8:]}"
        exams.append(_read_study(common, groups, stiffness_units, name))
    return exams


def _common_parts(folders: list[Path]) -> tuple[str, ...]:
    parts = [f.parts for f in folders]
    out = []
    for items in zip(*parts, strict=False):
        if len(set(items)) != 1:
            break
        out.append(items[0])
    return tuple(out)


def _exam_id(root: Path, folder: Path) -> str:
    """The exam folder relative to ``root`` (its own name when it is ``root``); 'dicom' leaves are skipped."""
    if folder.name.lower() == "dicom" and folder != root:
        folder = folder.parent
    rel = folder.relative_to(root) if folder != root and root in folder.parents else Path(root.name)
    return rel.as_posix()


def _assign_roles(exam_dir: Path, groups: dict[str, list[tuple[Path, Any]]], series: list[dict[str, Any]],
                  warnings: list[str]) -> dict[str, list[tuple[Path, Any]]]:
    """Role -> the series' ``(path, dataset)`` items; colour and surplus series are skipped with a warning."""
    roles: dict[str, list[tuple[Path, Any]]] = {}
    for items in groups.values():
        ds = items[0][1]
        desc = str(getattr(ds, "SeriesDescription", ""))
        role = _role(desc, list(getattr(ds, "ImageType", []) or []))
        if role is None:
            continue
        if str(getattr(ds, "PhotometricInterpretation", "")).upper().startswith(("RGB", "YBR", "PALETTE")):
            warnings.append(f"colour series '{desc}' skipped (no kPa values)")
            continue
        if role in roles:
            if role in ("stiffness", "confidence"):
                raise InputError(f"{exam_dir}: one study holds two {role} series; found {_found(series)}. "
                                 "Put each acquisition in its own folder and pass that folder")
            warnings.append(f"second {role} series '{desc}' ignored")
            continue
        roles[role] = items
    if "stiffness" not in roles:
        raise InputError(
            f"{exam_dir}: not a recognised MRE layout, no stiffness series; found {_found(series)}. "
            "Expected a series described STIFF/ELASTOGRAM (kPa via Real World Value Mapping or RescaleType)"
        )
    return roles


def _confidence(exam_dir: Path, roles: dict[str, list[tuple[Path, Any]]], s_locs: list[float], s_ds: list[Any],
                series: list[dict[str, Any]]) -> tuple[np.ndarray, str]:
    """Confidence in percent ``(D, H, W)`` from a confidence series or the stiffness overlay, and its source."""
    if "confidence" in roles:
        c_locs, c_ds = _stack(roles["confidence"], exam_dir)
        _check_locations(exam_dir, s_locs, c_locs, "confidence")
        conf = np.stack([
            _pixels(ds, "confidence") * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
            for ds in c_ds
        ])
        if conf.max() <= 1.0:
            return conf * 100.0, "series-fraction"
        return conf, "series"
    if all((0x6000, 0x3000) in ds for ds in s_ds):
        return np.stack([np.where(ds.overlay_array(0x6000) > 0, 0.0, 100.0) for ds in s_ds]).astype(np.float32), "overlay"
    raise InputError(
        f"{exam_dir}: not a recognised MRE layout, no confidence map; found {_found(series)}. Expected a "
        "series described CONF (percent) or an overlay plane (60xx,3000) on the stiffness images"
    )


def _magnitude(exam_dir: Path, roles: dict[str, list[tuple[Path, Any]]], s_locs: list[float],
               shape: tuple[int, ...]) -> np.ndarray | None:
    """Magnitude ``(D, H, W)`` on the stiffness slices, or ``None`` without a magnitude series."""
    if "magnitude" not in roles:
        return None
    m_locs, m_ds = _stack(roles["magnitude"], exam_dir)
    _check_locations(exam_dir, s_locs, m_locs, "magnitude")
    magnitude = np.stack([_pixels(ds, "magnitude") for ds in m_ds])
    if magnitude.shape != shape:
        raise InputError(f"{exam_dir}: magnitude images {magnitude.shape} and stiffness {shape} differ")
    return magnitude


def _spacing(s_locs: list[float], ds: Any, warnings: list[str]) -> tuple[float, float, float]:
    """Voxel spacing (slice gap, row, column) in mm from the stiffness series."""
    ps = getattr(ds, "PixelSpacing", None)
    row_mm, col_mm = (float(ps[0]), float(ps[1])) if ps is not None else (1.0, 1.0)
    if ps is None:
        warnings.append("no PixelSpacing: areas are in pixels, not mm²")
    gap = float(np.median(np.diff(s_locs))) if len(s_locs) > 1 else float(getattr(ds, "SliceThickness", 1) or 1)
    return (abs(gap) or 1.0, row_mm, col_mm)


def _read_study(exam_dir: Path, groups: dict[str, list[tuple[Path, Any]]], stiffness_units: str | None,
                exam_id: str) -> MreExam:
    """Build one exam from its series (``SeriesInstanceUID -> [(path, dataset)]``)."""
    series = _summary(groups)
    warnings: list[str] = []
    roles = _assign_roles(exam_dir, groups, series, warnings)
    s_locs, s_ds = _stack(roles["stiffness"], exam_dir)
    desc = str(getattr(s_ds[0], "SeriesDescription", ""))
    stiff, how = [], ""
    for ds in s_ds:
        slope, icpt, how = _stiffness_scale(ds, stiffness_units, desc)
        stiff.append(_pixels(ds, desc) * slope + icpt)
    stiffness = np.stack(stiff)
    conf, conf_how = _confidence(exam_dir, roles, s_locs, s_ds, series)
    magnitude = _magnitude(exam_dir, roles, s_locs, stiffness.shape)
    if conf.shape != stiffness.shape:
        raise InputError(f"{exam_dir}: confidence {conf.shape} and stiffness {stiffness.shape} differ in shape")
    if not np.isfinite(stiffness).all():
        raise InputError(f"{exam_dir}: stiffness series holds NaN/inf after scaling")
    if not 4 <= len(s_locs) <= 5:
        warnings.append(f"{len(s_locs)} slices (MRE exams usually have 4-5)")
    spacing = _spacing(s_locs, s_ds[0], warnings)
    manufacturer = str(getattr(s_ds[0], "Manufacturer", "")).strip() or "unknown"
    synthetic = str(getattr(s_ds[0], "ManufacturerModelName", "")) == PHANTOM_MODEL_NAME or \
        "SYNTHETIC" in str(getattr(s_ds[0], "ImageComments", "")).upper()
    meta = {"manufacturer": manufacturer, "stiffness_scaling": how, "confidence_source": conf_how,
            "synthetic": synthetic}

    def img(a: np.ndarray) -> Image:
        return Image(a.astype(np.float32), spacing_mm=spacing, modality="MR", path=exam_dir, meta=meta)

    return MreExam(
        stiffness_kpa=img(stiffness),
        confidence_pct=img(np.clip(conf, 0, 100)),
        magnitude=img(magnitude) if magnitude is not None else None,
        layout=f"{manufacturer}: kPa via {how}, confidence from {conf_how}",
        series=series,
        slice_locations_mm=[float(v) for v in s_locs],
        warnings=warnings,
        exam_id=exam_id,
        synthetic=synthetic,
    )


def _check_locations(exam_dir: Path, ref: list[float], other: list[float], what: str) -> None:
    if len(ref) != len(other) or not np.allclose(ref, other, atol=0.6):
        raise InputError(
            f"{exam_dir}: {what} slices at {other} mm do not match the stiffness slices at {ref} mm; "
            "export both series of the same acquisition"
        )
