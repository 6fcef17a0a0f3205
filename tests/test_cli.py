"""The `liverfib` console script end to end: fast help, audit/split outputs, one-line errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import liverfib
from liverfib.dataset import read_split_csv
from liverfib.dataset.audit import AUDIT_JSON_KEYS

LIVERFIB = Path(sys.executable).with_name("liverfib")
HEAVY = ("torch", "timm", "torchvision", "cv2", "sklearn", "scipy", "albumentations", "pydicom")


def run(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LIVERFIB), *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, build_dataset):
    return build_dataset(tmp_path_factory.mktemp("cli") / "us")


# --------------------------------------------------------------------------------- startup
def test_console_script_exists() -> None:
    assert LIVERFIB.is_file(), f"console script not found next to {sys.executable}"


def test_help_is_fast() -> None:
    start = time.perf_counter()
    proc = run("--help")
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    for command in ("audit", "split", "evaluate", "predict", "train", "models"):
        assert command in proc.stdout
    assert elapsed < 2.0


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from liverfib.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]"
    assert "Usage" in proc.stdout


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout == f"liverfib {liverfib.__version__}\n"


def test_models_lists_the_default_backbone() -> None:
    proc = run("models")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ") and line.split()]
    assert "tf_efficientnet_lite0" in names and "us_staging_default" in names
    lite0 = next(line for line in proc.stdout.splitlines() if line.strip().startswith("tf_efficientnet_lite0"))
    assert "imagenet" in lite0
    tasks = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("task ")]
    assert {"us-staging", "us-liver-seg", "mre-seg", "mri-seg", "mri-staging"} <= set(tasks)
    lite = run("models", "*lite*")
    assert [line.split()[0] for line in lite.stdout.splitlines() if line.startswith("  ")] == [
        f"tf_efficientnet_lite{k}" for k in range(3)
    ]


# ------------------------------------------------------------------------------------ audit
def test_audit_json_and_reports(dataset, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = run("audit", dataset.root, "--json", "--out", out)
    assert proc.returncode == 0, proc.stderr

    summary = json.loads(proc.stdout)
    assert AUDIT_JSON_KEYS <= set(summary)
    assert summary["n_files"] == dataset.n_files
    assert summary["n_unreadable"] == 1
    assert summary["n_unique_exact"] == dataset.n_unique_exact
    assert summary["n_clusters"] == dataset.n_clusters
    assert summary["source_label_cramers_v"] > 0.5

    assert sorted(p.name for p in out.iterdir()) == ["audit.html", "audit.json", "files.csv"]
    assert json.loads((out / "audit.json").read_text()) == summary
    with (out / "files.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["path", "label", "patient", "sha256", "cluster", "source"]
    assert {r["path"] for r in rows} == set(dataset.label) - set(dataset.corrupt)
    html = (out / "audit.html").read_text()
    assert html.lower().startswith("<!doctype html>")
    assert "broken.png" in html  # the unreadable list
    assert "data:image/png;base64," in html  # the near-duplicate montage


def test_audit_text_output(dataset) -> None:
    proc = run("audit", dataset.root)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: label is predictable from the acquisition source" in proc.stdout
    assert "byte-identical copy groups:  3" in proc.stdout


# ------------------------------------------------------------------------------------ split
def test_split_then_folds(dataset, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    proc = run("split", dataset.root, "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["mode"] == "grouped" and summary["n_files"] == dataset.n_files - 1
    rows = read_split_csv(out)
    assert {r["path"] for r in rows} == set(dataset.label) - set(dataset.corrupt)
    sides: dict[str, set[str]] = {}
    for r in rows:
        sides.setdefault(r["cluster"], set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values())
    assert {r["split"] for r in rows} == {"train", "val", "test"}

    folds = tmp_path / "folds.csv"
    proc = run("split", dataset.root, "--out", folds, "--folds", "3")
    assert proc.returncode == 0, proc.stderr
    assert "grouped-kfold" in proc.stdout
    rows = read_split_csv(folds)
    assert {r["split"] for r in rows} == {"fold0", "fold1", "fold2"}
    sides = {}
    for r in rows:
        sides.setdefault(r["group"], set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values())


# ----------------------------------------------------------------------------------- errors
def test_audit_missing_folder(tmp_path: Path, one_line_error) -> None:
    line = one_line_error(run("audit", tmp_path / "missing"))
    assert line == f"error: {tmp_path / 'missing'}: expected a dataset folder, found nothing"


def test_audit_empty_folder(tmp_path: Path, one_line_error) -> None:
    line = one_line_error(run("audit", tmp_path))
    assert "found no sub-folders" in line


def test_split_config_error(dataset, tmp_path: Path, one_line_error) -> None:
    proc = run("split", dataset.root, "--out", tmp_path / "s.csv", "--val-fraction", "0.9")
    # options are checked before the audit runs: nothing else is printed
    line = one_line_error(proc)
    assert line == "error: --val-fraction and --test-fraction must be fractions in [0, 1) summing below 1, got 0.9 and 0.15"
    assert not (tmp_path / "s.csv").exists()
