"""Evaluation figures are written and non-empty; JSON is written atomically with numpy types converted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from liverfib.errors import ConfigError
from liverfib.evaluation import evaluate_probabilities
from liverfib.report import plot_evaluation, write_json

CLASSES = ["F0", "F1", "F2", "F3", "F4"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _case(n: int = 80, seed: int = 0, drop: str | None = None) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    if drop is not None:
        y[y == CLASSES.index(drop)] = 0
    logits = rng.normal(size=(n, 5))
    logits[np.arange(n), y] += 1.5
    probs = np.exp(logits)
    return [CLASSES[i] for i in y], probs / probs.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("drop", [None, "F4"])
def test_plot_evaluation_writes_three_pngs(tmp_path: Path, drop: str | None) -> None:
    labels, probs = _case(drop=drop)
    result = evaluate_probabilities(labels, probs, CLASSES, n_boot=20)
    written = plot_evaluation(result, labels, probs, CLASSES, tmp_path / "figs")
    assert [p.name for p in written] == ["roc_curves.png", "confusion_matrix.png", "reliability.png"]
    for path in written:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, path.name


def test_plot_evaluation_rejects_mismatched_result(tmp_path: Path) -> None:
    labels, probs = _case()
    result = evaluate_probabilities(labels, probs, CLASSES, n_boot=0)
    with pytest.raises(ConfigError, match="n=79"):
        plot_evaluation(result, labels[:-1], probs[:-1], CLASSES, tmp_path)
    assert not list(tmp_path.iterdir())


def test_write_json_converts_numpy_types(tmp_path: Path) -> None:
    result = {
        "n": np.int64(3),
        "auc": np.float32(0.75),
        "ok": np.bool_(True),
        "cm": np.arange(4).reshape(2, 2),
        "path": Path("a/b.png"),
        "per": {np.int64(1): (np.float64(0.5), None)},
    }
    path = write_json(result, tmp_path / "sub" / "result.json")
    assert json.loads(path.read_text()) == {
        "n": 3, "auc": 0.75, "ok": True, "cm": [[0, 1], [2, 3]], "path": "a/b.png", "per": {"1": [0.5, None]},
    }  # fmt: skip
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_write_json_round_trips_an_evaluation(tmp_path: Path) -> None:
    labels, probs = _case()
    result = evaluate_probabilities(labels, probs, CLASSES, sources=["a"] * 80, n_boot=20)
    from liverfib.io.jsonio import tidy_floats

    assert json.loads(write_json(result, tmp_path / "r.json").read_text()) == tidy_floats(result)


def test_write_json_drops_binary_noise(tmp_path: Path) -> None:
    """Issue 20.9: no 2861.5499999999997 in a result file (12 significant digits; float32 -> 7)."""
    text = write_json({"area_mm2": 2861.5499999999997, "p": np.float32(0.1), "tiny": 1.234e-20},
                      tmp_path / "r.json").read_text()
    assert json.loads(text) == {"area_mm2": 2861.55, "p": 0.1, "tiny": 1.234e-20}


def test_write_json_rejects_nan_and_leaves_old_file(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_json({"auc": 0.9}, path)
    with pytest.raises(ValueError, match=r"result.ci95\[1\]"):
        write_json({"ci95": [0.1, np.float64("nan")]}, path)
    assert json.loads(path.read_text()) == {"auc": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_write_json_failed_rename_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "r.json"
    write_json({"auc": 0.9}, path)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_json({"auc": 0.1}, path)
    assert json.loads(path.read_text()) == {"auc": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
