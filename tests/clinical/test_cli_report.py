"""CLI commands of the clinical section and the HTML/PDF report."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
from typer.testing import CliRunner

from liverfib.cli import app

runner = CliRunner()


def test_report_command_writes_everything(us_dicom, tmp_path: Path, fast_models, monkeypatch) -> None:
    # the real predictor, loaded once per session instead of once per command (saves ~10 s)
    predictor = fast_models.predictor()
    monkeypatch.setattr("liverfib.inference.predictor.load_predictor", lambda _model="default": predictor)
    src = us_dicom()
    out = tmp_path / "rep"
    r = runner.invoke(app, ["report", str(src), "--out", str(out), "--no-cam", "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert result["stage"] in ("F0", "F1", "F2", "F3", "F4")
    assert abs(sum(result["probabilities"].values()) - 1.0) < 0.01
    for f in ("report.html", "report.pdf", "seg.dcm", "sr.dcm", "sc.dcm", "overlay.png", "result.json"):
        assert (out / f).is_file(), f
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    html = (out / "report.html").read_text()
    assert "RESEARCH USE ONLY" in html and f"<b>{result['stage']}</b>" in html
    assert "Doe^Johnathan" in html  # the report without --deidentified shows the patient
    assert "data:image/png;base64," in html  # self-contained
    labels = [s.SegmentLabel for s in pydicom.dcmread(out / "seg.dcm").SegmentSequence]
    assert labels[0] == "Ultrasound field of view"


def test_cam_overlay_and_deidentified_report(make_us_image, tmp_path: Path, fast_models) -> None:
    """A PNG upload with Grad-CAM (when the explain layer is present) and a de-identified report."""
    import numpy as np
    from PIL import Image

    from liverfib.pipeline.clinical import analyse_file

    png = tmp_path / "scan.png"
    Image.fromarray(make_us_image(np.random.default_rng(0), "B")).save(png)
    models = fast_models.derive(with_cam=True, pdf=True, deidentified_report=True)
    result = analyse_file(png, tmp_path / "b", models=models, name="scan.png")
    labels = [s.SegmentLabel for s in pydicom.dcmread(tmp_path / "b" / "seg.dcm").SegmentSequence]
    if any("Grad-CAM not available" in n for n in result["notes"]):
        assert len(labels) == 1
    else:
        assert any("Grad-CAM" in lab for lab in labels), labels
    html = (tmp_path / "b" / "report.html").read_text()
    assert html.count("(removed)") == 3
    sr = pydicom.dcmread(tmp_path / "b" / "sr.dcm")
    source = pydicom.dcmread(tmp_path / "b" / "source.dcm")
    assert sr.StudyInstanceUID == source.StudyInstanceUID  # the PNG was wrapped as an SC source


def test_cli_errors_are_one_line(tmp_path: Path, us_dicom, monkeypatch) -> None:
    monkeypatch.delenv("LIVERFIB_DEID_SALT", raising=False)
    monkeypatch.delenv("LIVERFIB_TOKEN", raising=False)
    cases = [
        ["deidentify", str(us_dicom()), str(tmp_path / "o")],  # no salt
        ["serve", "--data", str(tmp_path / "d")],  # no token
        ["serve-dicom", "--data", str(tmp_path / "d"), "--port", "0"],  # no --allow
        ["serve-dicom", "--allow", "X", "--forward", "nonsense", "--data", str(tmp_path / "d")],
        ["report", str(tmp_path / "missing.dcm"), "--out", str(tmp_path / "r")],
    ]
    for args in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, r.output)


def test_deidentify_command(us_dicom, tmp_path: Path) -> None:
    r = runner.invoke(app, ["deidentify", str(us_dicom()), str(tmp_path / "o"), "--salt", "s3cret", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["n_ok"] == 1
    out = pydicom.dcmread(summary["files"][0]["output"])
    assert out.PatientIdentityRemoved == "YES"
