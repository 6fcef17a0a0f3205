"""MRE exam reader on Siemens-style (RWVM + confidence series) and GE-style (rescale + overlay) exams."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from liverfib.errors import InputError
from liverfib.mre.dicom import read_mre_exam


def test_siemens_layout(mre_exams):
    e = mre_exams.siemens
    exam = read_mre_exam(e.dir)
    assert exam.layout == "SIEMENS: kPa via rwvm, confidence from series"
    assert exam.n_slices == e.sim.labels.shape[0]
    np.testing.assert_allclose(exam.stiffness_kpa.array, e.sim.elastogram_kpa, atol=0.0006)
    np.testing.assert_allclose(exam.confidence_pct.array, np.round(e.sim.confidence_pct), atol=1e-4)
    assert exam.pixel_spacing_mm == (1.6, 1.6)
    assert exam.magnitude is not None and exam.magnitude.shape == exam.stiffness_kpa.shape
    assert exam.slice_locations_mm == sorted(exam.slice_locations_mm)
    assert {s["role"] for s in exam.series} == {"magnitude", "wave", "stiffness", "confidence"}


def test_ge_layout_with_overlay(mre_exams):
    e = mre_exams.ge
    exam = read_mre_exam(e.dir)
    assert exam.layout == "GE MEDICAL SYSTEMS: kPa via rescale, confidence from overlay"
    np.testing.assert_allclose(exam.stiffness_kpa.array, e.sim.elastogram_kpa, atol=0.0051)
    np.testing.assert_array_equal(exam.confidence_pct.array >= 95, e.sim.confidence_pct >= 95)
    assert {s["role"] for s in exam.series} == {"magnitude", "wave", "stiffness"}


def test_unknown_layout_lists_what_was_found(tmp_path, mre_exams):
    import pydicom

    src = next(p for p in sorted((mre_exams.ge.dir / "dicom").rglob("*.dcm")))
    ds = pydicom.dcmread(src)
    ds.SeriesDescription = "T2 HASTE tra"
    (tmp_path / "x").mkdir()
    ds.save_as(tmp_path / "x" / "a.dcm")
    with pytest.raises(InputError) as err:
        read_mre_exam(tmp_path / "x")
    msg = str(err.value)
    assert "not a recognised MRE layout" in msg and "'T2 HASTE tra'" in msg and "\n" not in msg
    with pytest.raises(InputError, match="not found"):
        read_mre_exam(tmp_path / "missing")


def test_missing_units_and_missing_confidence(tmp_path, mre_exams):
    import pydicom

    exam_dir = tmp_path / "e"
    shutil.copytree(mre_exams.siemens.dir / "dicom", exam_dir)
    for f in exam_dir.iterdir():
        ds = pydicom.dcmread(f)
        if "CONFIDENCE" in ds.SeriesDescription:
            f.unlink()
        elif "ELASTOGRAM" in ds.SeriesDescription:
            del ds.RealWorldValueMappingSequence
            ds.save_as(f)
    with pytest.raises(InputError, match="--stiffness-units"):
        read_mre_exam(exam_dir)
    with pytest.raises(InputError, match="no confidence map"):
        read_mre_exam(exam_dir, stiffness_units="Pa")
