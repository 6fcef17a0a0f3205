"""predict-mri with the shipped synthetic-trained model says so in JSON, CSV and text (issue 16 item 5)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from liverfib.cli import app
from liverfib.mri.synthetic import write_liqa_dataset

torch.set_num_threads(1)
ASSET = Path(__file__).resolve().parents[2] / "src" / "liverfib" / "assets" / "mri_staging_synthetic" / "bundle.yaml"


@pytest.mark.skipif(not ASSET.is_file(), reason="shipped staging model not built")
def test_predict_mri_with_the_synthetic_model_is_flagged(tmp_path: Path) -> None:
    root = tmp_path / "liqa"
    write_liqa_dataset(root, 2, seed=7, shape=(16, 48, 48), p_missing=0.0)
    out = tmp_path / "preds.csv"
    r = CliRunner().invoke(app, ["predict-mri", str(root), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["synthetic"] is True
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and {row["synthetic"] for row in rows} == {"true"}
    r = CliRunner().invoke(app, ["predict-mri", str(root)])
    assert r.exit_code == 0 and "[SYNTHETIC" in r.output
