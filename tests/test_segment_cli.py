"""explain / pseudo-masks / segment / train-seg through the pipeline and the CLI edge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

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
        assert 0 <= d["mass_outside_fan"]["mean"] <= 1 and 0 < d["area_outside_fan"] < 1
        assert isinstance(d["alarm"], bool)
    assert "CAM mass outside the fan" in text
