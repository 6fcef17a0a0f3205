"""explain / pseudo-masks / segment / train-seg through the pipeline and the CLI edge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from liverfib.pipeline import run_explain, run_pseudo_masks, run_segment, run_train_seg

LIVERFIB = Path(sys.executable).with_name("liverfib")


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LIVERFIB), *map(str, args)], capture_output=True, text=True, timeout=300)


def test_segment_writes_same_size_masks_and_overlays(trained_seg, tmp_path: Path) -> None:
    summary, text = run_segment([trained_seg.data / "images"], modality="us", out=tmp_path / "o",
                                model=str(trained_seg.checkpoint))
    assert summary["n"] == 12 and "wrote 12" in text
    first = summary["images"][0]
    src = cv2.imread(first["path"], cv2.IMREAD_GRAYSCALE)
    mask = cv2.imread(first["mask_png"], cv2.IMREAD_UNCHANGED)
    overlay = cv2.imread(first["overlay_png"])
    assert mask.shape == src.shape and overlay.shape[:2] == src.shape
    assert set(np.unique(mask)) <= {0, 255}
    assert first["area_px"] == int((mask > 0).sum()) and first["area_mm2"] is None  # PNG: no spacing


def test_explain_with_liver_share(trained_run, trained_seg, tmp_path: Path) -> None:
    imgs = sorted((trained_seg.data / "images").glob("*.png"))[:2]
    summary, _ = run_explain(imgs, out_dir=tmp_path / "x", model=str(trained_run.checkpoint),
                             liver_model=str(trained_seg.checkpoint))
    assert summary["n"] == 2
    rec = summary["images"][0]
    assert 0 <= rec["cam"]["mass_in_liver"] <= 1 and 0 <= rec["cam"]["mass_in_fan"] <= 1
    assert Path(rec["overlay_png"]).is_file() and Path(rec["heatmap_png"]).is_file()
    assert json.loads((tmp_path / "x" / "explain.json").read_text())["method"] == "gradcam"


def test_pseudo_masks_then_attention_unet(trained_run, tmp_path: Path) -> None:
    summary, _ = run_pseudo_masks(trained_run.dataset.root, out_dir=tmp_path / "pm", model=str(trained_run.checkpoint),
                                  threshold="otsu")
    n_distinct = trained_run.dataset.n_unique_exact  # copies once, near-duplicates kept
    assert summary["n"] == n_distinct
    manifest = (tmp_path / "pm" / "manifest.csv").read_text().splitlines()
    assert manifest[0] == "file,mask,subject,label,source" and len(manifest) == n_distinct + 1
    out, _ = run_train_seg("cam-us", tmp_path / "pm", out_dir=tmp_path / "att",
                           overrides={"img_size": 64, "epochs": 1, "batch_size": 4}, val_fraction=0.3)
    assert (tmp_path / "att" / "model" / "bundle.yaml").is_file()
    assert 0 <= out["validation"]["dice"]["mean"] <= 1
    cfg = (tmp_path / "att" / "config.yaml").read_text()
    assert "arch: attention-unet" in cfg


def test_cli_errors_are_one_line(one_line_error, tmp_path: Path) -> None:
    assert "modality" in one_line_error(cli("segment", tmp_path, "--out", tmp_path / "o", "--modality", "xray"))
    assert "us-liver" in one_line_error(cli("train-seg", "--task", "lungs", "--data", tmp_path, "--out", tmp_path))
    assert "threshold" in one_line_error(cli("pseudo-masks", "--data", tmp_path, "--out", tmp_path / "p",
                                             "--threshold", "p200"))
    missing = one_line_error(cli("explain", tmp_path / "none.png", "--out", tmp_path / "e"))
    assert "not found" in missing


def test_evaluate_reports_cam_shortcut_per_source(trained_run) -> None:
    from liverfib.pipeline import run_evaluate

    metrics, text = run_evaluate(model=str(trained_run.checkpoint), data_dir=trained_run.dataset.root,
                                 split_csv=trained_run.split_csv, subset="val", n_boot=50, cam="gradcam")
    shortcut = metrics["cam_shortcut"]
    assert set(shortcut) == set(metrics["per_source"])
    for d in shortcut.values():
        lo, hi = d["mass_outside_fan"]["ci95"]
        assert 0 <= lo <= d["mass_outside_fan"]["mean"] <= hi <= 1 and 0 < d["area_outside_fan"] < 1
        assert d["alarm"] == (lo > d["area_outside_fan"])  # the rule the report states
        assert ("SHORTCUT ALARM" in text) >= d["alarm"]
    assert "CAM mass outside the fan" in text


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_shortcut_alarm_fires_only_when_the_cam_looks_outside_the_fan(
    where: str, tmp_path: Path, make_us_image, us_frame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CAMs put on the frame outside the fan (a model reading burned-in text or the device frame)
    must raise the alarm; CAMs on the tissue inside the fan must not. The CAM computation is replaced
    by these known maps; the fan is found by liverfib's own detector on the images."""
    from types import SimpleNamespace

    from liverfib.explain import cam as cam_mod
    from liverfib.inference import predictor as predictor_mod
    from liverfib.pipeline.evaluate import _cam_shortcut

    rng = np.random.default_rng(3)
    paths, sources = [], []
    for i in range(12):
        kind = "AB"[i % 2]
        path = tmp_path / f"{kind}{i}.png"
        cv2.imwrite(str(path), make_us_image(rng, kind))
        paths.append(path)
        sources.append(kind)

    def known_cams(_predictor, arrays, method="gradcam"):  # type: ignore[no-untyped-def]
        out = []
        for a in arrays:
            kind = "A" if a.shape == us_frame.sector_mask("A").shape else "B"
            fan = us_frame.sector_mask(kind)
            out.append(SimpleNamespace(heatmap=((~fan) if where == "outside" else fan).astype(np.float32)))
        return out

    monkeypatch.setattr(cam_mod, "compute_cams", known_cams)
    monkeypatch.setattr(predictor_mod, "load_predictor", lambda model: None)
    result = _cam_shortcut("any", paths, sources, "gradcam")
    assert set(result) == {"A", "B"}
    for d in result.values():
        assert d["alarm"] is (where == "outside"), d
        mass = d["mass_outside_fan"]["mean"]
        assert mass > 0.7 if where == "outside" else mass < 0.2  # liverfib's fan detector vs the true sector


# ------------------------------------------------------------------------- MR/CT volumes, modality
class _BrightIsLiver(torch.nn.Module):
    """A stand-in segmenter: logits = 40 * (x - 0.5), so voxels in the upper half of the range are liver."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 40.0 * (x - 0.5)


@pytest.fixture
def bright_is_liver(monkeypatch: pytest.MonkeyPatch) -> None:
    from liverfib.mri import segmentation as seg_mod
    from liverfib.pipeline import _mri_common

    model = seg_mod.SegModel(_BrightIsLiver(), seg_mod.SegModelConfig(img_size=64), {"trained_on": "test"})
    monkeypatch.setattr(_mri_common, "liver_segmenter", lambda name="default": model)


def _write_ct_slice(path: Path, arr: np.ndarray, *, z: float, modality: str = "CT", series_uid: str = "1.2.3.4",
                    iop: tuple[float, ...] = (1, 0, 0, 0, -1, 0), description: str = "abdomen") -> None:
    """One int16 slice, columns pointing anterior (AMOS-like export), 0.8 x 0.6 mm pixels."""
    from pydicom import uid
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.SOPClassUID = uid.CTImageStorage if modality == "CT" else uid.UltrasoundImageStorage
    ds.SOPInstanceUID = uid.generate_uid()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = "1.2.3", series_uid, "1.2.3.9"
    ds.Modality, ds.SeriesDescription, ds.SeriesNumber = modality, description, 1
    ds.PatientID, ds.PatientName = "anon", "Anon^"
    ds.set_pixel_data(arr, "MONOCHROME2", 16, generate_instance_uid=False)
    ds.PixelSpacing, ds.SliceThickness = [0.8, 0.6], 5.0
    ds.ImageOrientationPatient, ds.ImagePositionPatient = list(iop), [-5.0, 6.0, z]
    ds.save_as(path, enforce_file_format=True)


def _ct_study(root: Path, series_uid: str = "1.2.3.4", description: str = "abdomen") -> np.ndarray:
    """A study folder with the series one level down; a bright block (the 'liver') in the lower-right
    of every source frame of slices 1-3. Returns the source stack in file order (superior last)."""
    folder = root / "study" / f"series_{series_uid}"
    folder.mkdir(parents=True)
    stack = np.full((5, 48, 40), 100, np.int16)
    stack[1:4, 30:44, 22:36] = 900
    for k in range(5):
        _write_ct_slice(folder / f"im{9 - k}.dcm", stack[k], z=100.0 + 5 * k, series_uid=series_uid,
                        description=description)
    return stack


def test_volume_mask_qc_and_dicom_seg_lie_on_the_source_grid(tmp_path: Path, bright_is_liver: None) -> None:
    import highdicom as hd
    import nibabel as nib
    import pydicom

    _ct_study(tmp_path)
    summary, text = run_segment([tmp_path / "study"], modality="ct", out=tmp_path / "out" / "mask.nii.gz",
                                dicom_seg=True)
    r = summary["results"][0]
    assert r["kind"] == "volume" and r["liver_voxels"] == 3 * 14 * 14
    assert r["volume_ml"] == pytest.approx(3 * 14 * 14 * 5 * 0.8 * 0.6 / 1000, abs=0.005)  # rounded to 0.01 ml
    # NIfTI mask: every liver voxel lies where the DICOM geometry puts the bright block
    mask = nib.load(tmp_path / "out" / "mask.nii.gz")
    data = np.asarray(mask.dataobj)
    ras = mask.affine @ np.c_[np.argwhere(data > 0), np.ones(int(data.sum()))].T
    lps_x, lps_y, lps_z = -ras[0], -ras[1], ras[2]
    cols, rows, files = (lps_x + 5.0) / 0.6, (6.0 - lps_y) / 0.8, (lps_z - 100.0) / 5.0
    assert set(np.round(files).astype(int)) == {1, 2, 3}
    assert np.round(rows).min() == 30 and np.round(rows).max() == 43
    assert np.round(cols).min() == 22 and np.round(cols).max() == 35
    # QC montage beside the mask
    qc = tmp_path / "out" / "mask_qc.png"
    assert r["qc_png"] == str(qc) and qc.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # DICOM SEG: one frame per source slice, each equal to that slice's bright block
    seg = hd.seg.segread(str(tmp_path / "out" / "mask_seg.dcm"))
    assert r["dicom_seg"] == str(tmp_path / "out" / "mask_seg.dcm")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == "1.2.3.4"
    for f in sorted((tmp_path / "study" / "series_1.2.3.4").iterdir()):
        src = pydicom.dcmread(f)
        px = seg.get_pixels_by_source_instance(source_sop_instance_uids=[src.SOPInstanceUID], segment_numbers=[1])
        np.testing.assert_array_equal(px[0, :, :, 0] > 0, src.pixel_array > 500)
    assert "mask_qc.png" in text and "mask_seg.dcm" in text


def test_several_series_listed_and_picked(tmp_path: Path, bright_is_liver: None) -> None:
    from liverfib.errors import InputError

    _ct_study(tmp_path, "1.2.3.4", "arterial")
    _ct_study(tmp_path / "b", "1.2.3.5", "venous")
    (tmp_path / "b" / "study" / "series_1.2.3.5").rename(tmp_path / "study" / "series_1.2.3.5")
    with pytest.raises(InputError, match=r"2 DICOM image series, pass --series UID.*1\.2\.3\.4 'arterial' \(CT, 5 "
                       r"slices, in series_1\.2\.3\.4\); 1\.2\.3\.5 'venous'"):
        run_segment([tmp_path / "study"], modality="ct", out=tmp_path / "o.nii.gz")
    assert not (tmp_path / "o.nii.gz").exists()
    summary, _ = run_segment([tmp_path / "study"], modality="ct", out=tmp_path / "o.nii.gz", series_uid="1.2.3.5")
    assert summary["results"][0]["series_uid"] == "1.2.3.5"


def test_dicom_seg_needs_a_dicom_series(tmp_path: Path, bright_is_liver: None) -> None:
    from liverfib.errors import ConfigError

    (tmp_path / "vol.nii.gz").write_bytes(b"")
    with pytest.raises(ConfigError, match="--dicom-seg needs DICOM series folders"):
        run_segment([tmp_path / "vol.nii.gz"], modality="ct", out=tmp_path / "m.nii.gz", dicom_seg=True)


def test_segment_refuses_the_wrong_modality(tmp_path: Path, one_line_error) -> None:
    ct = tmp_path / "ct.dcm"
    _write_ct_slice(ct, np.full((48, 40), 100, np.int16), z=0.0)
    err = one_line_error(cli("segment", ct, "--modality", "us", "--out", tmp_path / "o"))
    assert "DICOM modality CT, not ultrasound; use --modality ct" in err
    assert not (tmp_path / "o").exists()
    err = one_line_error(cli("segment", ct, "--modality", "mr", "--out", tmp_path / "o2"))
    assert "DICOM modality CT but --modality mr was given; use --modality ct" in err
    us = tmp_path / "us.dcm"
    _write_ct_slice(us, np.full((48, 40), 100, np.int16), z=0.0, modality="US")
    err = one_line_error(cli("segment", us, "--modality", "ct", "--out", tmp_path / "o3"))
    assert "DICOM modality US, not MR/CT; use --modality us" in err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()
