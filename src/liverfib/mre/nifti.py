"""Read an MRE exam as research inversion tools export it: NIfTI volumes on one grid.

A NIfTI exam is a folder holding ``stiffness.nii.gz`` (kPa; ``.nii`` also accepted),
``magnitude.nii.gz`` (needed for automatic liver segmentation) and optionally
``confidence.nii.gz`` (fraction 0-1 or percent 0-100: a map whose maximum is <= 1 is read as a
fraction). All volumes must share one grid (shape and affine). Without a confidence map every
voxel counts as reliable and the exam carries a warning. Files are opened only through
:func:`liverfib.io.nifti.read_nifti`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from liverfib.errors import InputError
from liverfib.image import Image
from liverfib.mre.exam import STIFFNESS_UNITS, MreExam, check_stiffness_units

__all__ = ["NIFTI_NAMES", "is_nifti_exam", "read_mre_nifti"]

#: role -> accepted file names
NIFTI_NAMES = {
    "stiffness": ("stiffness.nii.gz", "stiffness.nii"),
    "magnitude": ("magnitude.nii.gz", "magnitude.nii"),
    "confidence": ("confidence.nii.gz", "confidence.nii"),
}


def _find(folder: Path, role: str) -> Path | None:
    for name in NIFTI_NAMES[role]:
        if (folder / name).is_file():
            return folder / name
    return None


def is_nifti_exam(folder: Path) -> bool:
    """True when ``folder`` holds a ``stiffness.nii[.gz]``."""
    return _find(Path(folder), "stiffness") is not None


def _on_grid(img: Image, path: Path, stiff: Image, stiff_path: Path) -> np.ndarray:
    """``img`` as float32 once it is known to share the stiffness volume's grid (shape and affine)."""
    if img.array.shape != stiff.array.shape or not np.allclose(img.meta["affine"], stiff.meta["affine"], atol=1e-3):
        raise InputError(f"{path}: grid {img.array.shape} differs from {stiff_path.name} {stiff.array.shape} "
                         "(shape or affine); export all volumes of the exam on one grid")
    return img.array.astype(np.float32)


def _read_stiffness(exam_dir: Path, stiffness_units: str | None) -> tuple[Path, Image, np.ndarray]:
    """The stiffness file, its image and the values in kPa ``(D, H, W)``."""
    from liverfib.io.nifti import read_nifti

    stiff_path = _find(exam_dir, "stiffness")
    if stiff_path is None:
        raise InputError(f"{exam_dir}: no stiffness.nii.gz; a NIfTI MRE exam holds stiffness.nii.gz (kPa), "
                         "magnitude.nii.gz and optionally confidence.nii.gz")
    stiff = read_nifti(stiff_path, modality="MR")
    if stiff.array.ndim != 3:
        raise InputError(f"{stiff_path}: expected a 3D volume (slices, rows, cols), got shape {stiff.array.shape}")
    kpa = stiff.array.astype(np.float32) * (STIFFNESS_UNITS[stiffness_units.upper()] if stiffness_units else 1.0)
    positive = kpa[kpa > 0]
    if stiffness_units is None and positive.size and float(np.median(positive)) > 100:
        raise InputError(f"{stiff_path}: median stiffness {float(np.median(positive)):.0f} looks like Pa, not kPa; "
                         "pass --stiffness-units Pa")
    return stiff_path, stiff, kpa


def _read_confidence(exam_dir: Path, stiff: Image, stiff_path: Path,
                     warnings: list[str]) -> tuple[Path | None, np.ndarray, str]:
    """The confidence file (or ``None``), the map in percent and how it was stored."""
    from liverfib.io.nifti import read_nifti

    conf_path = _find(exam_dir, "confidence")
    if conf_path is not None:
        conf = _on_grid(read_nifti(conf_path, modality="MR"), conf_path, stiff, stiff_path)
        conf_how = "fraction" if float(conf.max()) <= 1.0 else "percent"
        if conf_how == "fraction":
            conf = conf * 100.0
    else:
        conf = np.full(stiff.array.shape, 100.0, np.float32)
        conf_how = "none"
        warnings.append("no confidence.nii.gz: every voxel counted as reliable (confidence 100 %)")
    return conf_path, conf, conf_how


def read_mre_nifti(exam_dir: Path, *, stiffness_units: str | None = None, exam_id: str | None = None) -> MreExam:
    """Read one NIfTI exam folder into an :class:`liverfib.mre.exam.MreExam` (arrays ``(D, H, W)``)."""
    from liverfib.io.nifti import read_nifti

    exam_dir = Path(exam_dir)
    check_stiffness_units(stiffness_units)
    stiff_path, stiff, kpa = _read_stiffness(exam_dir, stiffness_units)
    warnings: list[str] = []
    conf_path, conf, conf_how = _read_confidence(exam_dir, stiff, stiff_path, warnings)
    mag_path = _find(exam_dir, "magnitude")
    mag = _on_grid(read_nifti(mag_path, modality="MR"), mag_path, stiff, stiff_path) if mag_path is not None else None
    spacing = tuple(float(v) for v in (stiff.spacing_mm or (1.0, 1.0, 1.0)))
    synthetic = (exam_dir / "SYNTHETIC.txt").is_file()
    meta = {"manufacturer": "NIfTI", "stiffness_scaling": "as stored (kPa)" if not stiffness_units else stiffness_units,
            "confidence_source": conf_how, "synthetic": synthetic}

    def img(a: np.ndarray) -> Image:
        return Image(a.astype(np.float32), spacing_mm=spacing, modality="MR", path=exam_dir, meta=meta)

    series = [{"series_number": k, "description": p.name, "role": role, "images": int(kpa.shape[0]), "photometric": ""}
              for k, (role, p) in enumerate((("stiffness", stiff_path), ("magnitude", mag_path),
                                             ("confidence", conf_path)), start=1) if p is not None]
    return MreExam(
        stiffness_kpa=img(kpa),
        confidence_pct=img(np.clip(conf, 0, 100)),
        magnitude=img(mag) if mag is not None else None,
        layout=f"NIfTI: kPa as stored, confidence {conf_how}",
        series=series,
        slice_locations_mm=[float(k * spacing[0]) for k in range(kpa.shape[0])],
        warnings=warnings,
        exam_id=exam_id or exam_dir.name,
        synthetic=synthetic,
    )
