"""DICOM SEG / SR / SC written with highdicom, read back, and validated with dciodvfy when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liverfib.errors import InputError
from liverfib.report.dicom import (
    Segment,
    dataset_from_array,
    read_dicom_dataset,
    read_seg_masks,
    read_sr_findings,
    run_dciodvfy,
    write_sc,
    write_seg,
    write_sr,
)

FINDINGS = {
    "stage": "F3",
    "probabilities": {"F0": 0.05, "F1": 0.1, "F2": 0.2, "F3": 0.4, "F4": 0.25},
    "p_ge_f2": 0.85,
    "p_ge_f3": 0.65,
    "p_f4": 0.25,
    "liver_volume_ml": 1523.5,
    "stiffness_kpa": 4.2,
    "model": "us-staging:default",
}


def _masks(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    liver = ((yy - 60) / 30.0) ** 2 + ((xx - 80) / 45.0) ** 2 <= 1.0
    cam = (yy > 70) & (yy < 100) & (xx > 90) & (xx < 130)
    return liver, cam


@pytest.fixture
def dciodvfy(clin) -> str:  # type: ignore[no-untyped-def]
    """dciodvfy on PATH (skipped without it, a failure under CI=true)."""
    return clin.require_tool("dciodvfy")


def _validate(path: Path) -> None:
    ok, errors = run_dciodvfy(path)
    assert ok, f"dciodvfy errors in {path.name}: {errors}"


def test_seg_round_trip_references_source(dciodvfy, us_dicom, tmp_path: Path) -> None:
    source = read_dicom_dataset(us_dicom())
    liver, cam = _masks((source.Rows, source.Columns))
    seg = write_seg(source, [Segment("Liver", liver, "liver"), Segment("CAM", cam, "cam")], tmp_path / "seg.dcm")
    assert seg.StudyInstanceUID == source.StudyInstanceUID
    assert seg.SeriesInstanceUID != source.SeriesInstanceUID
    ref = seg.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == source.SeriesInstanceUID
    assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    back = read_seg_masks(tmp_path / "seg.dcm")
    assert set(back) == {"Liver", "CAM"}
    np.testing.assert_array_equal(back["Liver"], liver)
    np.testing.assert_array_equal(back["CAM"], cam)
    _validate(tmp_path / "seg.dcm")


def test_seg_rejects_wrong_shape_and_kind(us_dicom, tmp_path: Path) -> None:
    source = read_dicom_dataset(us_dicom())
    with pytest.raises(InputError, match="differs from the source"):
        write_seg(source, [Segment("Liver", np.ones((5, 5), bool))], tmp_path / "x.dcm")
    with pytest.raises(InputError, match="unknown segment kind"):
        write_seg(source, [Segment("X", np.ones((source.Rows, source.Columns), bool), "tumour")], tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_sr_tid1500_round_trip(dciodvfy, us_dicom, tmp_path: Path) -> None:
    source = read_dicom_dataset(us_dicom())
    sr = write_sr(source, FINDINGS, tmp_path / "sr.dcm")
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    back = read_sr_findings(tmp_path / "sr.dcm")
    assert back["stage"] == "F3"
    assert back["probabilities"] == pytest.approx(FINDINGS["probabilities"])
    for key in ("p_ge_f2", "p_ge_f3", "p_f4", "liver_volume_ml", "stiffness_kpa"):
        assert back[key] == pytest.approx(FINDINGS[key]), key
    assert back["referenced_sop_uids"] == [source.SOPInstanceUID]
    _validate(tmp_path / "sr.dcm")


def test_sr_refuses_nan_and_empty(us_dicom, tmp_path: Path) -> None:
    source = read_dicom_dataset(us_dicom())
    with pytest.raises(InputError, match="finite"):
        write_sr(source, {**FINDINGS, "stiffness_kpa": float("nan")}, tmp_path / "sr.dcm")
    with pytest.raises(InputError, match="nothing to report"):
        write_sr(source, {}, tmp_path / "sr.dcm")
    assert not (tmp_path / "sr.dcm").exists()


def test_sc_overlay_and_upload_wrapper(dciodvfy, us_dicom, tmp_path: Path) -> None:
    source = read_dicom_dataset(us_dicom())
    rgb = np.zeros((source.Rows, source.Columns, 3), np.uint8)
    rgb[..., 0] = source.pixel_array
    rgb[10:20, 10:20] = (255, 0, 0)
    sc = write_sc(source, rgb, tmp_path / "sc.dcm")
    assert sc.StudyInstanceUID == source.StudyInstanceUID
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    back = read_dicom_dataset(tmp_path / "sc.dcm")
    np.testing.assert_array_equal(back.pixel_array, rgb)
    _validate(tmp_path / "sc.dcm")
    wrapped = dataset_from_array(source.pixel_array)
    assert wrapped.PatientID == "ANONYMOUS" and wrapped.StudyInstanceUID != source.StudyInstanceUID
    np.testing.assert_array_equal(wrapped.pixel_array, source.pixel_array)


def test_corrupt_dicom_is_an_input_error(us_dicom, tmp_path: Path) -> None:
    good = us_dicom().read_bytes()
    bad = tmp_path / "trunc.dcm"
    bad.write_bytes(good[: len(good) - 3000])
    with pytest.raises(InputError, match="corrupt|truncated|pixel"):
        read_dicom_dataset(bad)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 4)
    with pytest.raises(InputError):
        read_dicom_dataset(junk)


def test_dciodvfy_catches_an_invalid_file(dciodvfy, clin, tmp_path: Path) -> None:
    """The validator hook can fail: a US image without required attributes gives errors."""
    ds = clin.us_dataset(np.zeros((32, 32), np.uint8))
    del ds.ImageType
    ds.save_as(tmp_path / "bad.dcm", enforce_file_format=True)
    ok, errors = run_dciodvfy(tmp_path / "bad.dcm")
    assert ok is False and any("ImageType" in e for e in errors)
