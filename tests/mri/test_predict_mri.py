"""train-mri / predict-mri: command names, dataset-root predictions in the evaluate format, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from liverfib.cli import app
from liverfib.evaluation import read_predictions_csv
from liverfib.mri.synthetic import write_liqa_dataset

torch.set_num_threads(1)
runner = CliRunner()
ASSET = Path(__file__).resolve().parents[2] / "src" / "liverfib" / "assets" / "mri_staging_synthetic"
needs_shipped = pytest.mark.skipif(not ASSET.is_dir(), reason="shipped staging model not built")


def test_issue_names_are_documented_old_names_hidden_but_working() -> None:
    r = runner.invoke(app, ["--help"])
    assert "train-mri" in r.output and "predict-mri" in r.output
    assert "mri-train" not in r.output and "mri-stage" not in r.output
    for old, option in (("mri-train", "--sequence"), ("mri-stage", "--phases")):
        r = runner.invoke(app, [old, "--help"])
        assert r.exit_code == 0 and option in r.output


@needs_shipped
def test_predict_mri_on_a_liqa_root_writes_an_evaluate_csv(tmp_path: Path) -> None:
    root = tmp_path / "liqa"
    write_liqa_dataset(root, 4, seed=5, shape=(16, 48, 48), p_missing=0.2)
    out = tmp_path / "preds" / "preds.csv"
    r = runner.invoke(app, ["predict-mri", str(root), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["n_exams"] == 4 and summary["predictions_csv"] == str(out)
    paths, labels, probs, classes, extra = read_predictions_csv(out)
    assert classes == ["S1", "S2", "S3", "S4"] and labels == ["S1", "S2", "S3", "S4"]
    assert extra["group"] == ["0001", "0002", "0003", "0004"] and extra["source"] == ["A"] * 4
    by_path = {e["exam"]: e for e in summary["exams"]}
    for p, row in zip(paths, probs, strict=True):
        e = by_path[p]
        assert row[3] == pytest.approx(e["p_s4"], abs=1e-4) and 1 - row[0] == pytest.approx(e["p_s2_s4"], abs=1e-4)
        assert f"S{int(np.argmax(row)) + 1}" == e["stage"]
    r = runner.invoke(app, ["evaluate", "--predictions", str(out), "--n-boot", "50", "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.output)
    assert m["n_groups"] == 4 and m["binary"]["f4"]["positive_classes"] == ["S4"] and m["auc_f4"] is not None


@needs_shipped
def test_a_broken_case_stops_predict_mri_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "liqa"
    write_liqa_dataset(root, 2, seed=6, shape=(16, 48, 48), p_missing=0.0)
    broken = sorted(root.glob("Vendor_*/*"))[-1] / "GED4.nii.gz"
    broken.write_bytes(b"not a nifti")
    out = tmp_path / "preds.csv"
    r = runner.invoke(app, ["predict-mri", str(root), "--out", str(out)])
    assert r.exit_code == 2 and r.output.startswith("error:") and len(r.output.strip().splitlines()) == 1
    assert broken.parent.name in r.output and "nothing written" in r.output
    assert not out.exists() and list(tmp_path.glob("*.tmp")) == []
    r = runner.invoke(app, ["predict-mri", str(root), "--out", str(tmp_path / "preds.txt")])
    assert r.exit_code == 2 and ".csv" in r.output


def test_mri_train_alias_trains_liqa_and_writes_validation_predictions(tmp_path: Path) -> None:
    root = tmp_path / "liqa"
    write_liqa_dataset(root, 8, seed=7, shape=(12, 40, 40), p_missing=0.0)
    run = tmp_path / "run"
    r = runner.invoke(app, ["mri-train", "--data", str(root), "--out", str(run), "--steps", "2", "--n-boot", "20",
                            "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert result["layout"] == "liqa" and result["n_train"] + result["n_val"] == 8
    _, labels, probs, classes, extra = read_predictions_csv(run / "val_predictions.csv")
    assert classes == ["S1", "S2", "S3", "S4"] and len(labels) == result["n_val"]
    assert set(extra["group"]) <= {f"{i:04d}" for i in range(1, 9)}
    from liverfib.mri.staging import StagingConfig
    from liverfib.pipeline._mri_common import staging_network

    _, cfg, info = staging_network(run / "model")
    assert isinstance(cfg, StagingConfig) and info["layout"] == "liqa" and info["synthetic"] is True
    r = runner.invoke(app, ["train-mri", "--data", str(root), "--out", str(run), "--sequence", "T1"])
    assert r.exit_code == 2 and "--layout cirrmri" in r.output
