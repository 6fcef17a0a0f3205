"""Loaders for the LiQA and CirrMRI600+ layouts: phases, missing phases, grids, labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liverfib.errors import InputError
from liverfib.image import Image
from liverfib.io.nifti import write_nifti
from liverfib.mri.exam import LIQA_PHASES, read_exam_volumes
from liverfib.mri.layouts import list_cirrmri_exams, list_liqa_exams, read_cirrmri_labels, read_liqa_case
from liverfib.mri.synthetic import write_liqa_dataset


def _vol(shape=(6, 10, 12), spacing=(3.0, 1.5, 1.5), value=1.0) -> Image:
    return Image(np.full(shape, value, np.float32), spacing_mm=spacing, modality="MR")


def _case(root: Path, name: str, phases: list[str], mask: Image | None = None) -> Path:
    case = root / name
    case.mkdir(parents=True)
    for p in phases:
        write_nifti(_vol(), case / f"{p}.nii.gz")
    if mask is not None:
        write_nifti(mask, case / "mask_GED4.nii.gz")
    return case


def test_liqa_generated_layout_records_vendor_stage_and_missing(tmp_path: Path) -> None:
    rows = write_liqa_dataset(tmp_path, 6, seed=3, shape=(10, 36, 36), p_missing=0.5)
    exams = list_liqa_exams(tmp_path)
    assert len(exams) == 6
    by_id = {e.case_id: e for e in exams}
    for row in rows:
        exam = by_id[row["case_id"]]
        assert exam.vendor == row["vendor"] and exam.stage == row["stage"]
        assert list(exam.missing_phases) == (row["missing_phases"].split() if row["missing_phases"] else [])
        assert set(exam.phases) | set(exam.missing_phases) == set(LIQA_PHASES)
    assert any(e.missing_phases for e in exams)  # p_missing=0.5 over 6 x 7 phases
    assert (tmp_path / "SYNTHETIC.txt").read_text().startswith("SYNTHETIC")


def test_liqa_case_missing_phases_and_mask_grid(tmp_path: Path) -> None:
    mask = _vol(value=0).with_array(np.pad(np.ones((2, 4, 4), np.uint8), ((2, 2), (3, 3), (4, 4))))
    case = _case(tmp_path / "Vendor_A", "0001-A-S3", ["T1", "GED4"], mask)
    exam = read_liqa_case(case)
    assert exam.phases == ("T1", "GED4") and exam.stage == 3 and exam.vendor == "A"
    assert exam.missing_phases == ("T2", "DWI_800", "GED1", "GED2", "GED3")
    images, m = read_exam_volumes(exam)
    assert m is not None and m.array.sum() == 32 and set(images) == {"T1", "GED4"}


def test_inconsistent_mask_grid_is_a_clear_error(tmp_path: Path) -> None:
    bad = Image(np.zeros((6, 10, 11), np.uint8), spacing_mm=(3.0, 1.5, 1.5), modality="MR")
    case = _case(tmp_path / "Vendor_A", "0002-A-S1", ["GED4"], bad)
    with pytest.raises(InputError, match="grids differ"):
        read_exam_volumes(read_liqa_case(case))


def test_mask_with_foreign_labels_is_rejected(tmp_path: Path) -> None:
    labels = _vol(value=0).with_array(np.full((6, 10, 12), 2, np.uint8))
    case = _case(tmp_path / "Vendor_A", "0003-A-S2", ["GED4"], labels)
    with pytest.raises(InputError, match="only 0 and 1"):
        read_exam_volumes(read_liqa_case(case))


def test_stray_case_folder_and_missing_vendor_folders(tmp_path: Path) -> None:
    _case(tmp_path / "Vendor_A", "patient7", ["GED4"])
    with pytest.raises(InputError, match="NNNN-V-Sk"):
        list_liqa_exams(tmp_path)
    with pytest.raises(InputError, match="Vendor_A"):
        list_liqa_exams(tmp_path / "Vendor_A")


def test_cirrmri_layout_with_labels(tmp_path: Path) -> None:
    root = tmp_path / "CirrMRI600+"
    for seq in ("T1", "T2"):
        for split, ids in (("train", ["11", "12"]), ("test", ["13"])):
            for sid in ids:
                (root / f"Cirrhosis_{seq}_3D" / f"{split}_images").mkdir(parents=True, exist_ok=True)
                (root / f"Cirrhosis_{seq}_3D" / f"{split}_masks").mkdir(parents=True, exist_ok=True)
                write_nifti(_vol(), root / f"Cirrhosis_{seq}_3D" / f"{split}_images" / f"{sid}.nii.gz")
                write_nifti(_vol(value=1).with_array(np.ones((6, 10, 12), np.uint8)),
                            root / f"Cirrhosis_{seq}_3D" / f"{split}_masks" / f"{sid}.nii.gz")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("Patient ID,Age,Radiological Evaluation\n11,50,1\n12,61,3\n13,70,2\n")
    exams = list_cirrmri_exams(root, csv_path)
    assert len(exams) == 6
    e = next(x for x in exams if x.case_id == "T2/12")
    assert e.stage == 3 and e.split == "train" and e.phases == ("T2",) and e.mask_path is not None
    assert read_cirrmri_labels(csv_path) == {"11": 1, "12": 3, "13": 2}
    csv_path.write_text("Patient ID,Radiological Evaluation\n11,1\n12,5\n")
    with pytest.raises(InputError, match="expected 1 \\(mild\\)"):
        read_cirrmri_labels(csv_path)
    csv_path.write_text("Patient ID,Radiological Evaluation\n11,1\n12,2\n")
    with pytest.raises(InputError, match="'13' is not in the labels CSV"):
        list_cirrmri_exams(root, csv_path)
    csv_path.write_text("who,what\n11,1\n")
    with pytest.raises(InputError, match="radiological"):
        read_cirrmri_labels(csv_path)
