"""Issue 20 item 1: every command that takes ultrasound images refuses a CT DICOM with the check
``predict`` uses (``check_bmode``) and says why in one line, before anything is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

LIVERFIB = Path(sys.executable).with_name("liverfib")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LIVERFIB), *map(str, args)], capture_output=True, text=True, timeout=300, check=False)


def write_ct_slice(path: Path, seed: int = 0) -> Path:
    """One textured int16 CT slice (not blank, so only its modality is wrong)."""
    from pydicom import uid
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = uid.CTImageStorage, uid.generate_uid()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = "1.2.3", "1.2.3.4", "CT"
    arr = np.random.default_rng(seed).normal(100, 40, (96, 80)).astype(np.int16)
    ds.set_pixel_data(arr, "MONOCHROME2", 16, generate_instance_uid=False)
    ds.PixelSpacing = [0.8, 0.6]
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def ct(tmp_path: Path) -> Path:
    return write_ct_slice(tmp_path / "ct.dcm")


def test_explain_refuses_ct(ct: Path, tmp_path: Path, one_line_error) -> None:
    line = one_line_error(run("explain", ct, "-o", tmp_path / "x", "--liver-model", "none"))
    assert "ct.dcm: modality CT is not ultrasound" in line
    assert not list((tmp_path / "x").glob("*.png"))


def test_evaluate_data_refuses_ct(tmp_path: Path, one_line_error) -> None:
    data = tmp_path / "data"
    for k in range(5):
        write_ct_slice(data / f"F{k}" / "ct.dcm", seed=k)
    line = one_line_error(run("evaluate", "--model", "default", "--data", data, "-o", tmp_path / "ev", "--n-boot", "10"))
    assert "modality CT is not ultrasound" in line
    assert not (tmp_path / "ev" / "metrics.json").exists()


@pytest.mark.parametrize("roi", ["fan", "liver"])
def test_radiomics_extract_refuses_ct(ct: Path, tmp_path: Path, roi: str, one_line_error) -> None:
    out = tmp_path / "f.parquet"
    line = one_line_error(run("radiomics", "extract", "--images", ct, "--roi", roi, "-o", out))
    assert "ct.dcm: modality CT is not ultrasound" in line
    assert not out.exists()


def test_radiomics_extract_lists_a_refused_ct_beside_good_images(ct: Path, tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parents[1] / "demo" / "us" / "F0_a1027.jpg"
    proc = run("radiomics", "extract", "--images", ct, "--images", demo, "--roi", "fan", "-o", tmp_path / "f.parquet")
    assert proc.returncode == 0, proc.stderr
    assert "1 images x" in proc.stdout and "skipped: " in proc.stdout and "modality CT is not ultrasound" in proc.stdout


def test_radiomics_deep_features_refuses_ct(ct: Path, tmp_path: Path, one_line_error) -> None:
    out = tmp_path / "d.parquet"
    line = one_line_error(run("radiomics", "deep-features", "-i", ct, "-o", out))
    assert "ct.dcm: modality CT is not ultrasound" in line
    assert not out.exists()


def test_pseudo_masks_skips_ct_and_lists_it(tmp_path: Path, one_line_error) -> None:
    import shutil

    data = tmp_path / "data"
    for k in range(5):
        write_ct_slice(data / f"F{k}" / "ct.dcm", seed=k)
    line = one_line_error(run("pseudo-masks", "--data", data, "-o", tmp_path / "pm"))
    assert line.startswith("error: no image could be masked") and "modality CT is not ultrasound" in line
    shutil.copy(Path(__file__).resolve().parents[1] / "demo" / "us" / "F0_a1027.jpg", data / "F0" / "us.jpg")
    proc = run("pseudo-masks", "--data", data, "-o", tmp_path / "pm2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("skipped: ") == 5 and "wrote 1 pseudo-masks" in proc.stdout
    assert (tmp_path / "pm2" / "manifest.csv").read_text().count("\n") == 2  # header + the ultrasound image
