"""Two small phantom MRE exams (one Siemens-style, one GE-style) written once per session."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def mre_exams(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    from liverfib.mre.phantom import simulate_exam, write_exam

    root = tmp_path_factory.mktemp("mre")
    out = {}
    for name, seed, stage, vendor in (("siemens", (11, 0), "F1", "siemens"), ("ge", (11, 1), "F3", "ge")):
        exam = simulate_exam(seed, stage, vendor)
        write_exam(exam, root / name, exam_id=name)
        out[name] = SimpleNamespace(dir=root / name, sim=exam, seed=seed,
                                    truth=json.loads((root / name / "truth.json").read_text()))
    return SimpleNamespace(root=root, **out)


@pytest.fixture()
def one_line_error(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run the CLI, expect exit 2 and exactly one 'error:' line on stderr; return that line."""
    from typer.testing import CliRunner

    from liverfib.cli import app

    def run(args: list[str]) -> str:
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, res.output
        lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), res.output
        return lines[0]

    return run


@pytest.fixture()
def write_csv():  # type: ignore[no-untyped-def]
    """Write a list of dict rows as CSV; returns the path."""
    import csv

    def write(path: Path, rows: list[dict]) -> Path:
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        return path

    return write
