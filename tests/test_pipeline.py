"""pipeline.run_*: evaluate (CSV or model), predict, train; and the `liverfib predict` console
script on good and unreadable files (exit codes, one-line errors)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from liverfib import pipeline
from liverfib.errors import ConfigError, InputError

LIVERFIB = Path(sys.executable).with_name("liverfib")
CLASSES = ["F0", "F1", "F2", "F3", "F4"]


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LIVERFIB), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def _corrupt(path: Path) -> Path:
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)))  # JPEG signature, then garbage
    return path


@pytest.fixture
def predictions_csv(tmp_path: Path) -> tuple[Path, list[str], np.ndarray]:
    rng = np.random.default_rng(0)
    labels = [CLASSES[i % 5] for i in range(20)]
    probs = rng.dirichlet(np.ones(5), size=20)
    for i, lab in enumerate(labels[:14]):  # 14 of 20 rows predict their label
        probs[i, CLASSES.index(lab)] += 2.0
    probs = np.round(probs / probs.sum(1, keepdims=True), 6)
    probs[:, 0] = 1.0 - probs[:, 1:].sum(1)
    path = tmp_path / "preds.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", *(f"prob_{c}" for c in CLASSES), "group", "source"])
        for i, (lab, p) in enumerate(zip(labels, probs, strict=True)):
            w.writerow([f"img{i}.png", lab, *(f"{v:.6f}" for v in p), f"g{i // 2}", "AB"[i % 2]])
    return path, labels, probs


# -------------------------------------------------------------------------------------- evaluate
def test_evaluate_predictions_csv(predictions_csv) -> None:
    path, labels, probs = predictions_csv
    metrics, text = pipeline.run_evaluate(predictions_csv=path, n_boot=50)
    expected = float(np.mean([CLASSES[i] == lab for i, lab in zip(probs.argmax(1), labels, strict=True)]))
    assert metrics["n"] == 20
    assert metrics["accuracy"] == pytest.approx(expected)
    assert 0.0 <= metrics["macro_auc"] <= 1.0
    assert set(metrics["per_source"]) == {"A", "B"}
    lo, hi = metrics["ci95"]["accuracy"]
    assert lo <= metrics["accuracy"] <= hi
    assert text.startswith("n = 20 ")
    assert f"accuracy           {expected:.3f}" in text


def test_evaluate_says_where_it_wrote(predictions_csv, tmp_path: Path) -> None:
    """Issue 20.9: the output names the folder and the files in it, or says nothing was written."""
    path, _, _ = predictions_csv
    out = tmp_path / "eval"
    _, text = pipeline.run_evaluate(predictions_csv=path, n_boot=20, out_dir=out)
    last = text.splitlines()[-1]
    assert last.startswith("wrote ") and last.endswith(f" to {out}") and "metrics.json" in last
    _, text = pipeline.run_evaluate(predictions_csv=path, n_boot=20)
    assert "nothing written; pass --out FOLDER" in text.splitlines()[-1]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({}, "give either --predictions CSV or --model"),
        ({"model": "default", "predictions_csv": Path("p.csv")}, "give either --predictions CSV or --model"),
        ({"model": "default"}, "--model needs --data DIR"),
        (
            {"model": "default", "data_dir": Path("d"), "split_csv": Path("s.csv"), "labels_csv": Path("l.csv")},
            "--labels applies to a whole folder",
        ),
    ],
)
def test_evaluate_needs_one_source(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        pipeline.run_evaluate(**kw)


def test_evaluate_model_on_split(trained_run) -> None:
    metrics, _ = pipeline.run_evaluate(
        model=str(trained_run.checkpoint),
        data_dir=trained_run.dataset.root,
        split_csv=trained_run.split_csv,
        subset="val",
        n_boot=20,
    )
    assert metrics["n"] == 5
    assert metrics["accuracy"] == pytest.approx(trained_run.summary["val_metrics"]["accuracy"])


def test_evaluate_model_counts_copies_once(trained_run) -> None:
    common = {
        "model": str(trained_run.checkpoint),
        "data_dir": trained_run.dataset.root,
        "split_csv": trained_run.split_csv,
        "subset": "train",
        "n_boot": 0,
    }
    assert pipeline.run_evaluate(**common)[0]["n"] == 12
    assert pipeline.run_evaluate(**common, keep_copies=True)[0]["n"] == 16


def _expected_folder_accuracy(trained_run) -> tuple[int, float]:
    """Accuracy over the distinct readable images, labels from the folder names (not from the code
    under test), predictions from the model itself."""
    from liverfib.inference.predictor import load_predictor

    ds = trained_run.dataset
    distinct = dict(ds.originals)
    distinct.update({p: ds.label[p] for p in ds.near_group})
    predictor = load_predictor(str(trained_run.checkpoint), engine="torch")
    out = predictor.predict_paths([ds.root / p for p in distinct])
    stages = [predictor.classes[int(k)] for k in np.asarray(out.probs).argmax(1)]
    return len(distinct), float(np.mean([s == lab for s, lab in zip(stages, distinct.values(), strict=True)]))


def test_evaluate_model_on_a_whole_folder(trained_run) -> None:
    """No --split: every distinct image of the labelled folder, groups from the audit clustering."""
    n, accuracy = _expected_folder_accuracy(trained_run)
    metrics, text = pipeline.run_evaluate(
        model=str(trained_run.checkpoint), data_dir=trained_run.dataset.root, n_boot=50
    )
    assert metrics["n"] == n == trained_run.dataset.n_unique_exact
    assert metrics["accuracy"] == pytest.approx(accuracy)
    assert metrics["n_groups"] == trained_run.dataset.n_clusters  # the near-duplicate scan is one group
    assert set(metrics["per_source"]) == {"S1", "S2"}
    for entry in metrics["per_source"].values():
        lo, hi = entry["accuracy_ci95"]
        assert lo <= entry["accuracy"] <= hi
    assert "source S1" in text and "source S2" in text


def test_evaluate_folder_with_a_labels_csv(trained_run, tmp_path: Path) -> None:
    ds = trained_run.dataset
    labels = tmp_path / "labels.csv"
    rows = [f"{p},{lab}" for p, lab in sorted(ds.originals.items())]
    labels.write_text("path,label\n" + "\n".join(rows) + "\n")
    metrics, _ = pipeline.run_evaluate(model=str(trained_run.checkpoint), data_dir=ds.root, labels_csv=labels, n_boot=0)
    assert metrics["n"] == len(ds.originals)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\n" + "\n".join(f"{p},cirrhosis" for p in sorted(ds.originals)) + "\n")
    with pytest.raises(InputError, match="not METAVIR stages"):
        pipeline.run_evaluate(model=str(trained_run.checkpoint), data_dir=ds.root, labels_csv=bad, n_boot=0)


def test_cli_evaluate_folder_json(trained_run) -> None:
    import json

    from typer.testing import CliRunner

    from liverfib.cli import app

    args = ["evaluate", "--model", str(trained_run.checkpoint), "--data", str(trained_run.dataset.root),
            "--n-boot", "20", "--json"]
    result = CliRunner().invoke(app, args)  # in-process: a subprocess reloads torch (slow on a busy machine)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == trained_run.dataset.n_unique_exact


# --------------------------------------------------------------------------------------- predict
def test_run_predict_folder_with_a_bad_file(trained_run, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good = folder / "good.png"
    good.write_bytes((trained_run.dataset.root / "F3/f3_0.png").read_bytes())
    bad = _corrupt(folder / "bad.jpg")
    summary, text = pipeline.run_predict(
        [folder], model=str(trained_run.checkpoint), out_csv=tmp_path / "p.csv"
    )
    assert summary["n"] == 1
    assert [e["path"] for e in summary["errors"]] == [str(bad)]
    lines = text.splitlines()
    assert lines[1].startswith("file") and "P(>=F2)" in lines[1]
    assert lines[2].startswith("good.png")
    assert lines[3].startswith(f"skipped: {bad}")
    with (tmp_path / "p.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows] == [str(good)]
    assert sum(float(rows[0][f"prob_{c}"]) for c in CLASSES) == pytest.approx(1.0, abs=1e-3)


def test_run_predict_nothing_readable(trained_run, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no image could be staged"):
        pipeline.run_predict([_corrupt(tmp_path / "bad.jpg")], model=str(trained_run.checkpoint))


# ----------------------------------------------------------------------------------------- train
def test_run_train_config_and_overrides(trained_run, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump({"img_size": 96, "feature_stages": [1, 2], "C_grid": [0.01], "epochs": 3, "seed": 7})
    )
    summary, text = pipeline.run_train(
        trained_run.dataset.root,
        trained_run.split_csv,
        tmp_path / "run",
        config_path=config,
        overrides={"epochs": 0, "img_size": 64},
        threads=1,
    )
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["epochs"] == 0 and saved["img_size"] == 64  # flags beat YAML
    assert saved["C_grid"] == [0.01] and saved["feature_stages"] == [1, 2]  # YAML beats defaults
    assert saved["seed"] == 7  # a CLI default must not silently override the YAML
    assert text.startswith("trained tf_efficientnet_lite0: checkpoint ")
    assert summary["n_val"] == 5


def test_run_train_bad_threads(trained_run, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--threads must be at least 1"):
        pipeline.run_train(trained_run.dataset.root, trained_run.split_csv, tmp_path / "run", threads=0)


# ------------------------------------------------------------------------------------------- CLI
def test_cli_predict_corrupt_file(trained_run, tmp_path: Path, one_line_error) -> None:
    bad = _corrupt(tmp_path / "bad.jpg")
    one_line_error(run_cli("predict", bad))  # default model (or its absence): one line
    line = one_line_error(run_cli("predict", bad, "--model", trained_run.checkpoint))
    assert line.startswith("error: no image could be staged (1 refused): ") and str(bad) in line


def test_cli_predict_folder_with_good_and_corrupt_files(trained_run, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "liver.png").write_bytes((trained_run.dataset.root / "F1/f1_0.jpg").read_bytes())
    bad = _corrupt(folder / "zz_bad.jpg")
    proc = run_cli("predict", folder, "--model", trained_run.checkpoint)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("model: ") and "research use only" in lines[0]
    assert lines[1].split()[:2] == ["file", "stage"]
    assert lines[2].split()[0] == "liver.png" and lines[2].split()[1] in CLASSES
    assert len(lines) == 5
    assert lines[3].startswith(f"skipped: {bad}: corrupt or truncated JPEG")
    assert lines[4].startswith("1 file(s) skipped")
