"""`liverfib evaluate --predictions` on MRI predictions: LiQA S1..S4 and CirrMRI600+ mild/moderate/severe."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score
from typer.testing import CliRunner

from liverfib.cli import app
from liverfib.errors import ConfigError
from liverfib.evaluation import evaluate_probabilities

runner = CliRunner()


def _write_csv(path: Path, classes: list[str], labels: np.ndarray, probs: np.ndarray, groups: list[str],
               sources: list[str]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", *[f"prob_{c}" for c in classes], "group", "source"])
        for i, (y, p) in enumerate(zip(labels, probs, strict=True)):
            w.writerow([f"case{i}", classes[y], *[f"{v:.6f}" for v in p], groups[i], sources[i]])


def _synthetic(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.2
    p = np.exp(logits)
    p = np.round(p / p.sum(1, keepdims=True), 6)
    p[:, -1] = 1 - p[:, :-1].sum(1)  # rows sum to 1 after rounding
    return y, p


def test_liqa_stage_csv_gives_binary_aucs_matching_sklearn(tmp_path: Path) -> None:
    classes = ["S1", "S2", "S3", "S4"]
    y, p = _synthetic(40, 4, seed=1)
    groups = [f"{i // 2:04d}" for i in range(40)]  # two exams per patient
    sources = [("A", "B1", "B2")[i % 3] for i in range(40)]
    csv_path = tmp_path / "preds.csv"
    _write_csv(csv_path, classes, y, p, groups, sources)
    r = runner.invoke(app, ["evaluate", "--predictions", str(csv_path), "--n-boot", "200", "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.output)
    stage = y + 1
    assert m["auc_f4"] == pytest.approx(roc_auc_score(stage == 4, p[:, 3]))  # S4 vs S1-S3
    assert m["auc_ge_f2"] == pytest.approx(roc_auc_score(stage >= 2, p[:, 1:].sum(1)))  # S2-S4 vs S1
    assert m["auc_ge_f2"] == pytest.approx(roc_auc_score(stage >= 2, 1 - p[:, 0]))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert m["binary"]["f4"]["positive_classes"] == ["S4"]
    assert m["binary"]["ge_f2"]["positive_classes"] == ["S2", "S3", "S4"]
    assert m["bootstrap_unit"] == "group" and m["n_groups"] == 20
    lo, hi = m["ci95"]["auc_f4"]
    assert lo <= m["auc_f4"] <= hi and hi - lo > 0.01
    assert set(m["per_source"]) == {"A", "B1", "B2"}


def test_cirrmri_grades_evaluate_without_binary_tasks(tmp_path: Path) -> None:
    classes = ["mild", "moderate", "severe"]
    y, p = _synthetic(30, 3, seed=2)
    m = evaluate_probabilities([classes[i] for i in y], p, classes, groups=[str(i // 3) for i in range(30)], n_boot=50)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert m["auc_f4"] is None and m["auc_ge_f2"] is None and m["n_groups"] == 10
    with pytest.raises(ConfigError, match="ascending stage order"):
        evaluate_probabilities([classes[i] for i in y], p[:, ::-1], classes[::-1], n_boot=0)


def test_metavir_classes_keep_their_tasks() -> None:
    """F1..F4 (no F0) still anchor on F2/F4; S-anchors never replace F-anchors."""
    y, p = _synthetic(24, 4, seed=3)
    m = evaluate_probabilities([f"F{i + 1}" for i in y], p, ["F1", "F2", "F3", "F4"], n_boot=0)
    assert m["binary"]["ge_f2"]["positive_classes"] == ["F2", "F3", "F4"]
    assert m["auc_f4"] == pytest.approx(roc_auc_score(y == 3, p[:, 3]))
