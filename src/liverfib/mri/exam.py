"""Multi-phase MRI exams: what one case folder holds, before any voxel is read.

An :class:`MriExam` names the phase files of one examination (LiQA: ``T1, T2, DWI_800,
GED1..GED4`` and ``mask_GED4``), the vendor and stage parsed from the folder name, and which of
the expected phases are missing. Voxels are read on demand with :func:`read_phase` /
:func:`read_exam_volumes`, which also check that a mask lies on the grid of its phase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from liverfib.errors import InputError, unknown_choice
from liverfib.image import Image

__all__ = [
    "LIQA_PHASES",
    "LIQA_VENDORS",
    "REFERENCE_PHASE_ORDER",
    "MriExam",
    "check_same_grid",
    "parse_liqa_case_name",
    "read_exam_volumes",
    "read_phase",
    "reference_phase",
]

#: LiQA phases in acquisition order; ``GED1..GED4`` are the contrast phases (GED4 the last).
LIQA_PHASES: tuple[str, ...] = ("T1", "T2", "DWI_800", "GED1", "GED2", "GED3", "GED4")
#: LiQA vendor folders.
LIQA_VENDORS: tuple[str, ...] = ("Vendor_A", "Vendor_B1", "Vendor_B2")
#: Preferred reference phase when GED4 (the annotated one) is missing.
REFERENCE_PHASE_ORDER: tuple[str, ...] = ("GED4", "GED3", "GED2", "GED1", "T1", "T2", "DWI_800")

_CASE_RE = re.compile(r"^(?P<id>\d+)-(?P<vendor>[A-Za-z0-9]+)-S(?P<stage>[1-4])$")


@dataclass(frozen=True)
class MriExam:
    """One MRI examination (file names only; no voxels).

    Attributes:
        case_id: the folder name (LiQA ``NNNN-V-Sk``) or the scan id (CirrMRI600+).
        root: the case folder.
        phase_paths: phase name -> file or DICOM series folder, for the phases present.
        missing_phases: expected phases that are absent, in :data:`LIQA_PHASES` order.
        mask_path: the liver mask (LiQA: on the GED4 grid), if annotated.
        mask_phase: the phase whose grid the mask lies on.
        vendor: vendor folder / letter when known.
        stage: fibrosis stage (LiQA S1..S4 -> 1..4; CirrMRI600+ 1 mild, 2 moderate, 3 severe).
        split: dataset split when the layout defines one (CirrMRI600+ train/valid/test).
        meta: layout-specific extras.
    """

    case_id: str
    root: Path
    phase_paths: dict[str, Path]
    missing_phases: tuple[str, ...] = ()
    mask_path: Path | None = None
    mask_phase: str | None = None
    vendor: str | None = None
    stage: int | None = None
    split: str | None = None
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def phases(self) -> tuple[str, ...]:
        """Phases present, in acquisition order."""
        order = {p: i for i, p in enumerate(LIQA_PHASES)}
        return tuple(sorted(self.phase_paths, key=lambda p: (order.get(p, 99), p)))

    def summary(self) -> dict[str, object]:
        """JSON-ready description (paths as strings)."""
        return {
            "case_id": self.case_id,
            "vendor": self.vendor,
            "stage": self.stage,
            "split": self.split,
            "phases": list(self.phases),
            "missing_phases": list(self.missing_phases),
            "mask": str(self.mask_path) if self.mask_path else None,
            "mask_phase": self.mask_phase,
            **{k: v for k, v in self.meta.items() if isinstance(v, str | int | float | list | tuple)},
        }


def parse_liqa_case_name(name: str) -> tuple[str, str, int]:
    """``'0042-A-S3'`` -> ``('0042', 'A', 3)``; raises :class:`InputError` otherwise."""
    m = _CASE_RE.match(name)
    if m is None:
        raise InputError(
            f"LiQA case folder '{name}' does not match 'NNNN-V-Sk' (digits, vendor letter(s), stage S1..S4), "
            "e.g. '0042-A-S3'; rename it or pass the dataset root that holds Vendor_* folders"
        )
    return m["id"], m["vendor"], int(m["stage"])


def reference_phase(exam: MriExam) -> str:
    """The phase whose grid the other phases are brought onto: the mask's phase, else GED4, GED3, ..."""
    if exam.mask_phase is not None and exam.mask_phase in exam.phase_paths:
        return exam.mask_phase
    for phase in REFERENCE_PHASE_ORDER:
        if phase in exam.phase_paths:
            return phase
    if exam.phase_paths:
        return exam.phases[0]
    raise InputError(f"{exam.root}: exam '{exam.case_id}' has no phase images")


def read_phase(exam: MriExam, phase: str) -> Image:
    """Read one phase (NIfTI file or DICOM series folder) as an MR :class:`Image` ``(D, H, W)``."""
    if phase not in exam.phase_paths:
        raise unknown_choice(f"phase of exam '{exam.case_id}'", phase, exam.phase_paths)
    image = _read_volume(exam.phase_paths[phase])
    return image.with_array(image.array, meta={**image.meta, "phase": phase, "vendor": exam.vendor})


def read_exam_volumes(exam: MriExam, *, with_mask: bool = True) -> tuple[dict[str, Image], Image | None]:
    """Read every present phase and (optionally) the mask; the mask must lie on its phase's grid.

    Returns:
        ``(phase -> Image, mask Image or None)``; the mask array is ``uint8`` 0/1.

    Raises:
        InputError: unreadable file, a 2D file where a volume is expected, a mask whose grid
            (shape, spacing, affine) differs from its phase, or a mask with labels other than 0/1.
    """
    images = {p: read_phase(exam, p) for p in exam.phases}
    mask = None
    if with_mask and exam.mask_path is not None:
        mask = _read_volume(exam.mask_path)
        ref = exam.mask_phase or reference_phase(exam)
        if ref in images:
            check_same_grid(images[ref], mask, what=f"mask of '{exam.case_id}' vs phase {ref}")
        mask = mask.with_array(check_binary_mask(mask.array, exam.mask_path))
    return images, mask


def check_binary_mask(array: np.ndarray, path: Path | str) -> np.ndarray:
    """Return a ``uint8`` 0/1 copy of a liver mask; raise if it holds other labels."""
    values = np.unique(array)
    extra = [v for v in values.tolist() if v not in (0, 1)]
    if extra:
        hint = " (0/255 PNG-style masks: divide by 255)" if extra == [255] else ""
        raise InputError(
            f"{path}: liver mask must hold only 0 and 1, found labels {extra[:6]}{hint}; "
            "for a multi-organ label map extract the liver label first"
        )
    return (array > 0).astype(np.uint8)


def check_same_grid(a: Image, b: Image, *, what: str, atol_mm: float = 1e-3) -> None:
    """Raise :class:`InputError` unless ``a`` and ``b`` share shape, spacing and affine."""
    if a.shape != b.shape:
        raise InputError(f"{what}: grids differ, shape {a.shape} vs {b.shape} ({a.name}, {b.name}); "
                         "resample the mask onto its image or fix the file pairing")
    if a.spacing_mm is not None and b.spacing_mm is not None and not np.allclose(
        a.spacing_mm, b.spacing_mm, atol=atol_mm
    ):
        raise InputError(f"{what}: voxel spacing differs, {a.spacing_mm} vs {b.spacing_mm} mm "
                         f"({a.name}, {b.name}); resample the mask onto its image")
    aa, ab = a.meta.get("affine"), b.meta.get("affine")
    if aa is not None and ab is not None and not np.allclose(np.asarray(aa), np.asarray(ab), atol=1e-2):
        raise InputError(f"{what}: affines differ (origin/orientation) between {a.name} and {b.name}; "
                         "the mask is not on the image grid")


def _read_volume(path: Path) -> Image:
    from liverfib.io.dicom_series import read_dicom_series
    from liverfib.io.nifti import read_nifti

    image = read_dicom_series(path) if path.is_dir() else read_nifti(path, modality="MR")
    if image.ndim != 3:
        raise InputError(f"{path}: expected a 3D volume, got shape {image.shape}")
    if image.modality != "MR":
        image = image.with_array(image.array, modality="MR") if image.modality == "OT" else image
    return image
