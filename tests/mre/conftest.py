"""Small phantom MRE exams written once per session: one Siemens-style and one GE-style DICOM exam,
the same two simulations as NIfTI exams, and one independent-variant NIfTI exam."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def mre_exams(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    from liverfib.mre.phantom import simulate_exam, write_exam

    root = tmp_path_factory.mktemp("mre")
    nifti_root = tmp_path_factory.mktemp("mre_nifti")
    out = {}
    for name, seed, stage, vendor, variant, fmt, where in (
        ("siemens", (11, 0), "F1", "siemens", "standard", "dicom", root),
        ("ge", (11, 1), "F3", "ge", "standard", "dicom", root),
        ("indep", (12, 0), "F4", "siemens", "independent", "nifti", nifti_root),
    ):
        exam = simulate_exam(seed, stage, vendor, variant=variant)
        write_exam(exam, where / name, exam_id=name, fmt=fmt)
        out[name] = SimpleNamespace(dir=where / name, sim=exam, seed=seed,
                                    truth=json.loads((where / name / "truth.json").read_text()))
        if fmt == "dicom":  # the same simulation exported as NIfTI volumes
            write_exam(exam, nifti_root / f"{name}_nifti", exam_id=f"{name}_nifti", fmt="nifti")
            out[f"{name}_nifti"] = SimpleNamespace(dir=nifti_root / f"{name}_nifti", sim=exam, seed=seed,
                                                   truth=out[name].truth)
    return SimpleNamespace(root=root, nifti_root=nifti_root, **out)


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

