"""CLI: phantom mri, mri-inspect, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from liverfib.cli import app

runner = CliRunner()


def test_phantom_mri_then_inspect(tmp_path: Path) -> None:
    out = tmp_path / "liqa"
    r = runner.invoke(app, ["phantom", "mri", "--out", str(out), "--n", "3", "--size", "32", "--slices", "8", "--p-missing", "0.3"])
    assert r.exit_code == 0, r.output
    assert "SYNTHETIC" in r.output
    r = runner.invoke(app, ["mri-inspect", str(out), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["layout"] == "liqa" and summary["n_exams"] == 3
    manifest = (out / "synthetic_manifest.csv").read_text().splitlines()[1:]
    n_missing = sum(len(line.split(",")[4].split()) for line in manifest)
    assert sum(summary["missing_phase_counts"].values()) == n_missing


def test_errors_are_one_line(tmp_path: Path) -> None:
    r = runner.invoke(app, ["mri-inspect", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.strip().startswith("error:") and "no phase images" in r.output
    r = runner.invoke(app, ["phantom", "mri", "--out", str(tmp_path / "x"), "--p-missing", "1.5"])
    assert r.exit_code == 2 and "--p-missing" in r.output
