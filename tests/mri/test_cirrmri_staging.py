"""CirrMRI600+ 3-grade staging: SYNTHETIC layout, per-slice net, train-mri per slice and per patient, predict-mri."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from liverfib.cli import app
from liverfib.errors import ConfigError
from liverfib.evaluation import read_predictions_csv
from liverfib.models.bundle import save_bundle
from liverfib.mri.layouts import list_cirrmri_exams, read_cirrmri_labels
from liverfib.mri.slice_staging import (
    SliceStagingConfig,
    average_by_group,
    build_slice_net,
    predict_slice_probs,
    train_slice_staging,
)
from liverfib.mri.staging import staging_bundle_fields
from liverfib.mri.synthetic import write_cirrmri_dataset
from liverfib.pipeline._mri_common import staging_network

torch.set_num_threads(1)
runner = CliRunner()


def test_synthetic_cirrmri_layout_splits_grades_and_healthy(tmp_path: Path) -> None:
    rows = write_cirrmri_dataset(tmp_path, 9, seed=1, shape=(12, 40, 40), n_healthy=1)
    exams = list_cirrmri_exams(tmp_path, tmp_path / "labels.csv")
    assert len(exams) == 18 and {e.meta["sequence"] for e in exams} == {"T1", "T2"}
    for seq in ("T1", "T2"):
        for split in ("train", "valid", "test"):  # every grade in every split
            assert {e.stage for e in exams if e.meta["sequence"] == seq and e.split == split} == {1, 2, 3}
    assert all(e.mask_path is not None for e in exams)
    labels = read_cirrmri_labels(tmp_path / "labels.csv")
    assert len(labels) == 9 and "H1" not in labels
    assert sorted(p.name for p in (tmp_path / "Healthy_subjects").iterdir()) == [
        "T1_images", "T1_masks", "T2_images", "T2_masks"]
    assert (tmp_path / "SYNTHETIC.txt").read_text().startswith("SYNTHETIC")
    # grade follows the synthetic severity: mild -> S2 ... severe -> S4, band contrast grows
    by_grade = {g: [r for r in rows if r["grade"] == g] for g in (0, 1, 2, 3)}
    assert [by_grade[g][0]["synthetic_stage"] for g in (0, 1, 2, 3)] == [1, 2, 3, 4]
    contrast = [np.mean([r["band_contrast"] for r in by_grade[g]]) for g in (1, 2, 3)]
    assert contrast[0] < contrast[1] < contrast[2]
    with pytest.raises(ConfigError, match=">= 9"):
        write_cirrmri_dataset(tmp_path / "small", 5)


def test_average_by_group_and_slice_net_round_trip(tmp_path: Path) -> None:
    keys, mean = average_by_group(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]), ["b", "a", "b"])
    assert keys == ["b", "a"] and mean.tolist() == [[0.75, 0.25], [0.0, 1.0]]
    cfg = SliceStagingConfig(sequence="T2", crop_size=32, width=8)
    net = build_slice_net(cfg).eval()
    x = np.random.default_rng(0).random((5, 3, 32, 32)).astype(np.float16)
    p = predict_slice_probs(net, x)
    assert p.shape == (5, 3) and np.allclose(p.sum(1), 1)
    save_bundle(tmp_path / "m", net, **staging_bundle_fields(net, layout="cirrmri"))
    net2, cfg2, info = staging_network(tmp_path / "m")
    assert cfg2 == cfg and info["layout"] == "cirrmri"
    np.testing.assert_allclose(predict_slice_probs(net2, x), p, atol=2e-3)  # float16 storage


def test_slice_training_learns_and_selects_on_validation() -> None:
    rng = np.random.default_rng(0)

    def toy(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 3
        x = rng.normal(0, 0.05, (n, 3, 32, 32)) + (0.2 + 0.3 * y)[:, None, None, None]
        return x.astype(np.float16), y

    x, y = toy(60)
    xv, yv = toy(15)
    cfg = SliceStagingConfig(crop_size=32, width=8)
    net, rows, best = train_slice_staging(x, y, cfg, x_val=xv, y_val=yv, steps=40, batch_size=16, eval_every=10)
    assert best["val_accuracy"] == 1.0 and 1 <= best["step"] <= 40
    assert sum("val_accuracy" in r for r in rows) == 4
    assert (predict_slice_probs(net, xv).argmax(1) == yv).mean() == best["val_accuracy"]


def test_train_mri_cirrmri_reports_slice_and_patient_accuracy_and_predicts_a_volume(tmp_path: Path) -> None:
    data = tmp_path / "cirr"
    write_cirrmri_dataset(data, 9, seed=2, shape=(14, 40, 40), n_healthy=1)
    run = tmp_path / "run"
    r = runner.invoke(app, ["train-mri", "--data", str(data), "--out", str(run), "--sequence", "T2", "--labels",
                            str(data / "labels.csv"), "--steps", "8", "--n-slices", "4", "--crop-size", "32",
                            "--n-boot", "30", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["layout"] == "cirrmri" and res["sequence"] == "T2" and res["n_scans"] == {"train": 3, "valid": 3, "test": 3}
    assert 1 <= res["selected_step"] <= 8 and res["mask_sources"] == {"annotation": res["n_slices"]["train"]
                                                                     + res["n_slices"]["valid"] + res["n_slices"]["test"]}
    # per slice: every test slice one row, grouped by patient; per patient: mean of that patient's slice probs
    _, lab_s, p_s, classes, extra_s = read_predictions_csv(run / "test_predictions_slices.csv")
    assert classes == ["mild", "moderate", "severe"] and len(lab_s) == res["n_slices"]["test"]
    assert res["test_slice_accuracy"] == pytest.approx(np.mean([classes[i] == y for i, y in zip(p_s.argmax(1), lab_s, strict=True)]))
    keys, p_mean = average_by_group(p_s, extra_s["group"])
    label_of = dict(zip(extra_s["group"], lab_s, strict=True))
    assert res["test_patient_accuracy"] == pytest.approx(np.mean([classes[i] == label_of[k] for k, i in zip(keys, p_mean.argmax(1), strict=True)]))
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["metrics_patient"]["n"] == 3 and saved["metrics_patient"]["accuracy"] == res["test_patient_accuracy"]
    assert saved["metrics_slice"]["bootstrap_unit"] == "group" and saved["metrics_slice"]["n_groups"] == 3
    _, cfg, info = staging_network(run / "model")
    assert isinstance(cfg, SliceStagingConfig) and cfg.sequence == "T2" and info["classes"] == list(classes)

    # predict-mri on one volume + its mask reproduces the training run's patient row
    with (run / "test_predictions_patients.csv").open() as fh:
        first = next(csv.DictReader(fh))
    volume = Path(first["path"])
    mask = volume.parent.parent / "test_masks" / volume.name
    r = runner.invoke(app, ["predict-mri", str(volume), "--model", str(run / "model"), "--mask", str(mask), "--json"])
    assert r.exit_code == 0, r.output
    single = json.loads(r.output)
    assert single["mask_source"] == "annotation" and single["n_slices"] == 4
    for c in classes:
        assert single["probs"][c] == pytest.approx(float(first[f"prob_{c}"]), abs=2e-4)

    # a CirrMRI600+ root, per slice, all splits
    out = tmp_path / "all.csv"
    r = runner.invoke(app, ["predict-mri", str(data), "--model", str(run / "model"), "--labels",
                            str(data / "labels.csv"), "--split", "all", "--unit", "slice", "--out", str(out)])
    assert r.exit_code == 0, r.output
    _, lab_all, _, _, extra_all = read_predictions_csv(out)
    assert len(lab_all) == 9 * 4 and len(set(extra_all["group"])) == 9 and set(extra_all["source"]) == {"T2"}

    # wrong input kinds are one-line errors
    r = runner.invoke(app, ["predict-mri", str(volume), "--model", str(run / "model"), "--phases", "GED4"])
    assert r.exit_code == 2 and "--phases" in r.output
    r = runner.invoke(app, ["predict-mri", str(data), "--model", str(run / "model"), "--split", "holdout"])
    assert r.exit_code == 2 and "--split" in r.output
