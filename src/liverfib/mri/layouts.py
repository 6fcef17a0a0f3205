"""Dataset layouts: LiQA (CARE 2024) and CirrMRI600+ folders -> lists of :class:`MriExam`.

LiQA::

    ROOT/Vendor_{A,B1,B2}/{NNNN}-{V}-S{1-4}/{T1,T2,DWI_800,GED1..GED4}.nii.gz [+ mask_GED4.nii.gz]

A phase may also be a DICOM series folder of the same name (``GED4/``). Absent phases are recorded
in ``missing_phases``.

CirrMRI600+::

    ROOT/Cirrhosis_T{1,2}_3D/{train,valid,test}_{images,masks}/{id}.nii.gz  + labels CSV

The labels CSV has an id column (``id``, ``ID``, ``Patient ID``, ``patient_id``, ``Name``, ...) and a
radiological evaluation column (1 mild, 2 moderate, 3 severe); the phase name is ``T1``/``T2``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from liverfib.errors import InputError
from liverfib.mri.exam import LIQA_PHASES, LIQA_VENDORS, MriExam, parse_liqa_case_name

__all__ = ["list_liqa_exams", "read_liqa_case", "list_cirrmri_exams", "read_cirrmri_labels", "CIRRMRI_STAGES",
           "detect_layout"]

#: CirrMRI600+ radiological evaluation codes.
CIRRMRI_STAGES = {1: "mild", 2: "moderate", 3: "severe"}
_ID_COLUMNS = ("id", "patient id", "patient_id", "patientid", "name", "case", "case_id", "scan", "image")
_NIFTI_SUFFIXES = (".nii.gz", ".nii")


def detect_layout(path: str | Path) -> str | None:
    """``'liqa'`` for a folder holding ``Vendor_*`` folders, ``'cirrmri'`` for a CirrMRI600+ root
    (``Cirrhosis_T*_3D`` folders, or one of them), else ``None`` (a case folder, a file, ...)."""
    path = Path(path)
    if not path.is_dir():
        return None
    names = [d.name for d in path.iterdir() if d.is_dir()]
    if any(n.startswith("Vendor_") for n in names):
        return "liqa"
    if any(n.startswith("Cirrhosis_T") for n in names) or path.name.startswith("Cirrhosis_T"):
        return "cirrmri"
    return None


def _phase_file(case_dir: Path, name: str) -> Path | None:
    for suffix in _NIFTI_SUFFIXES:
        p = case_dir / f"{name}{suffix}"
        if p.is_file():
            return p
    d = case_dir / name
    return d if d.is_dir() else None


def read_liqa_case(case_dir: str | Path, *, vendor: str | None = None) -> MriExam:
    """Describe one LiQA case folder (``NNNN-V-Sk`` or any folder holding phase files).

    The stage and vendor come from the folder name when it follows ``NNNN-V-Sk``; otherwise they
    are ``None`` (a case to predict). Raises :class:`InputError` when no phase file is found.
    """
    case_dir = Path(case_dir)
    if not case_dir.is_dir():
        raise InputError(f"{case_dir}: expected a case folder holding T1/T2/DWI_800/GED1..GED4 .nii.gz files")
    try:
        _, letter, stage = parse_liqa_case_name(case_dir.name)
    except InputError:
        letter, stage = None, None
    phases = {p: f for p in LIQA_PHASES if (f := _phase_file(case_dir, p)) is not None}
    if not phases:
        found = sorted(x.name for x in case_dir.iterdir())[:8]
        raise InputError(
            f"{case_dir}: no phase images; expected some of {', '.join(f'{p}.nii.gz' for p in LIQA_PHASES)} "
            f"(or DICOM series folders of those names), found {found}"
        )
    mask = _phase_file(case_dir, "mask_GED4")
    missing = tuple(p for p in LIQA_PHASES if p not in phases)
    return MriExam(
        case_id=case_dir.name,
        root=case_dir,
        phase_paths=phases,
        missing_phases=missing,
        mask_path=mask,
        mask_phase="GED4" if mask is not None else None,
        vendor=vendor or letter,
        stage=stage,
        meta={"layout": "liqa"},
    )


def list_liqa_exams(root: str | Path) -> list[MriExam]:
    """All cases under a LiQA root (``Vendor_*/NNNN-V-Sk/``), sorted by vendor then case.

    Raises:
        InputError: no ``Vendor_*`` folder, a case folder whose name is not ``NNNN-V-Sk``, or a
            case whose stage letter disagrees with... nothing else (stage comes from the name).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: LiQA root folder not found")
    vendor_dirs = sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith("Vendor_"))
    if not vendor_dirs:
        found = sorted(d.name for d in root.iterdir())[:8]
        raise InputError(
            f"{root}: expected LiQA vendor folders {', '.join(LIQA_VENDORS)}, found {found}; "
            "pass the dataset root that holds Vendor_* folders"
        )
    exams = []
    for vdir in vendor_dirs:
        vendor = vdir.name.removeprefix("Vendor_")
        for case_dir in sorted(d for d in vdir.iterdir() if d.is_dir() and not d.name.startswith(".")):
            parse_liqa_case_name(case_dir.name)  # strict inside a dataset: clear error on a stray folder
            exams.append(read_liqa_case(case_dir, vendor=vendor))
    if not exams:
        raise InputError(f"{root}: Vendor_* folders hold no case folders (expected NNNN-V-Sk)")
    ids = [e.case_id for e in exams]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise InputError(f"{root}: case folders appear under several vendors: {dup[:5]}")
    return exams


def read_cirrmri_labels(csv_path: str | Path) -> dict[str, int]:
    """Read the CirrMRI600+ labels CSV -> ``{id: stage}`` with stage in 1..3.

    Raises:
        InputError: missing file, no id or radiological-evaluation column (columns are listed), a
            stage outside 1..3, or one id with two different stages.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InputError(f"{csv_path}: labels CSV not found")
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        rows = list(reader)
    lower = {c.strip().lower(): c for c in columns}
    id_col = next((lower[c] for c in _ID_COLUMNS if c in lower), None)
    stage_col = next((c for c in columns if "radiolog" in c.lower()), None)
    stage_col = stage_col or next((lower[c] for c in ("stage", "label", "grade") if c in lower), None)
    if id_col is None or stage_col is None:
        raise InputError(
            f"{csv_path}: expected an id column ({', '.join(_ID_COLUMNS[:5])}, ...) and a radiological "
            f"evaluation column (1 mild, 2 moderate, 3 severe), found columns {columns}"
        )
    labels: dict[str, int] = {}
    for i, row in enumerate(rows, start=2):
        key = _strip_nifti(str(row[id_col]).strip())
        raw = str(row[stage_col]).strip()
        if not key or not raw:
            continue
        try:
            value = int(float(raw))
        except ValueError:
            value = -1
        if value not in CIRRMRI_STAGES:
            raise InputError(
                f"{csv_path}, line {i}: {stage_col}={raw!r} for '{key}'; expected 1 (mild), 2 (moderate) or 3 (severe)"
            )
        if labels.get(key, value) != value:
            raise InputError(f"{csv_path}: id '{key}' has two stages ({labels[key]} and {value}); fix the CSV")
        labels[key] = value
    if not labels:
        raise InputError(f"{csv_path}: no labelled rows")
    return labels


def list_cirrmri_exams(root: str | Path, labels_csv: str | Path | None = None) -> list[MriExam]:
    """All scans under a CirrMRI600+ root (``Cirrhosis_T1_3D/``, ``Cirrhosis_T2_3D/`` or one of them).

    Each scan is one exam with one phase (``T1`` or ``T2``), its mask when present, ``split`` from
    the folder (train/valid/test) and ``stage`` from ``labels_csv`` (``None`` when not given).

    Raises:
        InputError: no ``Cirrhosis_T*_3D`` or ``*_images`` folder, or (with labels) a scan id
            missing from the CSV.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: CirrMRI600+ root folder not found")
    seq_dirs = sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith("Cirrhosis_T"))
    if not seq_dirs and root.name.startswith("Cirrhosis_T"):
        seq_dirs = [root]
    if not seq_dirs:
        found = sorted(d.name for d in root.iterdir())[:8]
        raise InputError(
            f"{root}: expected Cirrhosis_T1_3D/ and/or Cirrhosis_T2_3D/ folders, found {found}"
        )
    labels = read_cirrmri_labels(labels_csv) if labels_csv is not None else None
    exams: list[MriExam] = []
    for sdir in seq_dirs:
        seq = "T1" if "_T1" in sdir.name else "T2" if "_T2" in sdir.name else sdir.name
        image_dirs = sorted(d for d in sdir.iterdir() if d.is_dir() and d.name.endswith("_images"))
        if not image_dirs:
            raise InputError(f"{sdir}: expected train_images/, valid_images/, test_images/ folders")
        for idir in image_dirs:
            split = idir.name.removesuffix("_images")
            mdir = sdir / f"{split}_masks"
            for f in sorted(p for p in idir.iterdir() if p.name.endswith(_NIFTI_SUFFIXES)):
                sid = _strip_nifti(f.name)
                mask = mdir / f.name if (mdir / f.name).is_file() else None
                stage = None
                if labels is not None:
                    if sid not in labels:
                        raise InputError(
                            f"{f}: id '{sid}' is not in the labels CSV ({len(labels)} ids, e.g. "
                            f"{sorted(labels)[:3]}); check the id column"
                        )
                    stage = labels[sid]
                exams.append(
                    MriExam(
                        case_id=f"{seq}/{sid}",
                        root=idir,
                        phase_paths={seq: f},
                        missing_phases=(),
                        mask_path=mask,
                        mask_phase=seq if mask is not None else None,
                        stage=stage,
                        split=split,
                        meta={"layout": "cirrmri600", "subject": sid, "sequence": seq},
                    )
                )
    if not exams:
        raise InputError(f"{root}: no .nii.gz scans under Cirrhosis_T*_3D/*_images/")
    return exams


def _strip_nifti(name: str) -> str:
    for suffix in _NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
