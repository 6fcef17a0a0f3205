"""Hostile command-line input (issue 18, items 7-9) and the CLI conventions of issue 20 (items 5, 6, 11, 12).

Each test reproduces a probe case: a failed run must leave earlier results alone, a bad input must fail
in about a second without loading a model, and every refusal is one line ``error: ...`` with exit 2.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

LIVERFIB = Path(sys.executable).with_name("liverfib")
DEMO = Path(__file__).resolve().parents[1] / "demo" / "us"


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LIVERFIB), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          check=False, cwd=cwd)


def _corrupt_png(path: Path) -> Path:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    return path


def _in_process(args: list[str]) -> dict:
    """Run the CLI inside a fresh interpreter; report exit code, seconds spent in the command (after
    interpreter start-up) and whether torch was imported."""
    code = (
        "import json, sys, time\n"
        "from liverfib.cli import app\n"
        "t = time.perf_counter()\n"
        "try:\n"
        f"    app({args!r})\n"
        "    rc = 0\n"
        "except SystemExit as e:\n"
        "    rc = e.code\n"
        "print(json.dumps({'rc': rc, 'seconds': time.perf_counter() - t, 'torch': 'torch' in sys.modules}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "stderr": proc.stderr}


# ------------------------------------------------------------------------- 18.7 outputs only on success
def test_failed_predict_keeps_the_earlier_csv(tmp_path: Path, one_line_error) -> None:
    good = "path,stage\nold.png,F2\n"
    out = tmp_path / "preds.csv"
    out.write_text(good)
    line = one_line_error(run("predict", _corrupt_png(tmp_path / "bad.png"), "--out", out))
    assert "bad.png" in line and "corrupt or truncated PNG" in line
    assert out.read_text() == good  # not replaced by a header-only file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "preds.csv"]  # no stray .tmp


def test_failed_predict_creates_nothing(tmp_path: Path, one_line_error) -> None:
    one_line_error(run("predict", _corrupt_png(tmp_path / "bad.png"), "-o", tmp_path / "new" / "p.csv"))
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------- 18.8 checks before the model loads
@pytest.mark.parametrize("case", ["corrupt", "missing", "proc", "folder", "no-suffix", "bad-model"])
def test_bad_input_fails_fast_without_loading_a_model(tmp_path: Path, case: str) -> None:
    img = str(DEMO / "F0_a1027.jpg")
    args = {
        "corrupt": ["predict", str(_corrupt_png(tmp_path / "bad.png"))],
        "missing": ["predict", str(tmp_path / "nope.png")],
        "proc": ["predict", img, "--out", "/proc/x.csv"],
        "folder": ["predict", img, "--out", str(tmp_path)],
        "no-suffix": ["predict", img, "--out", str(tmp_path / "new")],
        "bad-model": ["predict", img, "--model", str(tmp_path / "missing.pt")],
    }[case]
    res = _in_process(args)
    assert res["rc"] == 2
    assert not res["torch"], "the model (torch) was loaded before the input was checked"
    assert res["seconds"] < 2.0, res
    lines = res["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_out_proc_is_one_line(one_line_error) -> None:
    line = one_line_error(run("predict", DEMO / "F0_a1027.jpg", "--out", "/proc/x.csv"))
    assert line.startswith("error: --out /proc/x.csv: cannot write there")


def test_out_existing_folder_for_a_one_file_command(tmp_path: Path, one_line_error) -> None:
    line = one_line_error(run("predict", DEMO / "F0_a1027.jpg", "--out", tmp_path))
    assert "is a folder; this command writes one file" in line and "predictions.csv" in line
    line = one_line_error(run("predict", DEMO / "F0_a1027.jpg", "--out", f"{tmp_path / 'new'}/"))
    assert "expected a .csv file name" in line
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------------------ 18.9 hostile inputs
def test_non_utf8_file_name_is_staged_and_written(tmp_path: Path) -> None:
    import liverfib

    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"scan_\xff\xfe.jpg")
    (folder / name).write_bytes((DEMO / "F0_a1027.jpg").read_bytes())
    out = tmp_path / "preds.csv"
    result = liverfib.predict(folder, out=out, engine="torch")
    assert len(result.predictions) == 1
    assert b"scan_\xff\xfe.jpg" in out.read_bytes()  # the file's own bytes, so the row finds it again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "preds.csv"]
    assert "scan_\\xff\\xfe.jpg" in result.text  # printable on any terminal


def test_non_utf8_corrupt_file_is_one_line(tmp_path: Path, one_line_error) -> None:
    bad = tmp_path / os.fsdecode(b"bad_\xff.png")
    _corrupt_png(bad)
    proc = subprocess.run([str(LIVERFIB).encode(), b"predict", os.fsencode(bad), b"-o", os.fsencode(tmp_path / "p.csv")],
                          capture_output=True, timeout=120, check=False)
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr
    assert proc.stderr.count(b"\n") == 1 and proc.stderr.startswith(b"error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == [bad.name]


def test_deidentify_non_dicom_exits_nonzero(tmp_path: Path, one_line_error) -> None:
    f = tmp_path / "notes.dcm"
    f.write_text("not a dicom file")
    line = one_line_error(run("deidentify", f, tmp_path / "anon", "--salt", "s"))
    assert "de-identified none of 1 file(s)" in line and "not DICOM" in line


def test_segment_mr_4d_nifti(tmp_path: Path, one_line_error) -> None:
    import nibabel as nib

    path = tmp_path / "dyn.nii.gz"
    nib.save(nib.Nifti1Image(np.random.rand(12, 12, 6, 3).astype(np.float32), np.eye(4)), path)
    line = one_line_error(run("segment", path, "--modality", "mr", "-o", tmp_path / "mask.nii.gz"))
    assert "4D NIfTI" in line
    assert not (tmp_path / "mask.nii.gz").exists()


def test_predict_mri_nan_volume(tmp_path: Path, one_line_error) -> None:
    import nibabel as nib

    case = tmp_path / "case"
    case.mkdir()
    vol = np.random.rand(32, 32, 12).astype(np.float32)
    vol[3, 3, 3] = np.nan
    nib.save(nib.Nifti1Image(vol, np.eye(4)), case / "T1.nii.gz")
    line = one_line_error(run("predict-mri", case))
    assert "NaN" in line
    res = _in_process(["predict-mri", str(case)])
    assert res["rc"] == 2 and not res["torch"]  # refused before the staging model loads


def test_report_dicom_without_pixels(tmp_path: Path, one_line_error) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Modality, ds.StudyInstanceUID, ds.SeriesInstanceUID = "US", generate_uid(), generate_uid()
    ds.save_as(tmp_path / "empty.dcm", enforce_file_format=True)
    line = one_line_error(run("report", tmp_path / "empty.dcm", "-o", tmp_path / "rep"))
    assert "without usable pixel data" in line


@pytest.fixture(scope="module")
def mre_exam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mre")
    proc = run("phantom", "mre", "-o", out, "--n", "1")
    assert proc.returncode == 0, proc.stderr
    return next(p for p in out.iterdir() if p.is_dir())


def test_mre_negative_confidence(mre_exam: Path, one_line_error) -> None:
    line = one_line_error(run("mre", mre_exam, "--confidence", "-5"))
    assert "confidence" in line


def test_mre_mask_on_another_grid(mre_exam: Path, tmp_path: Path, one_line_error) -> None:
    import nibabel as nib

    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((5, 5, 5), np.uint8), np.eye(4)), mask)
    line = one_line_error(run("mre", mre_exam, "--mask", mask))
    assert "does not match the exam" in line


# ------------------------------------------------------------------------- 20.5 / 20.6 conventions
def _commands() -> list[list[str]]:
    from liverfib.cli import app

    out: list[list[str]] = []

    def walk(t, prefix):  # type: ignore[no-untyped-def]
        for c in t.registered_commands:
            if not c.hidden:
                out.append([*prefix, c.name or c.callback.__name__.rstrip("_").replace("_", "-")])
        for g in t.registered_groups:
            walk(g.typer_instance, [*prefix, g.name])

    walk(app, [])
    return out


def test_every_help_has_two_examples_and_no_bool_metavar() -> None:
    from typer.testing import CliRunner

    from liverfib.cli import app

    runner = CliRunner()
    commands = _commands()
    assert len(commands) >= 20
    for cmd in commands:
        res = runner.invoke(app, [*cmd, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
        assert res.exit_code == 0, (cmd, res.output)
        assert "Examples:" in res.output, cmd
        assert len(re.findall(r"\$ (?:\S+=\S+ )?liverfib ", res.output)) >= 2, (cmd, res.output)
        assert "<bool>" not in res.output, cmd


def test_one_option_vocabulary() -> None:
    """--split is always a CSV, validation is --val-fraction / --val-subset, --model never an algorithm."""
    from typer.testing import CliRunner

    from liverfib.cli import app

    runner = CliRunner()
    env = {"COLUMNS": "200"}
    help_of = {" ".join(c): runner.invoke(app, [*c, "--help"], env=env).output for c in _commands()}
    for name, text in help_of.items():
        assert not re.search(r"--val\s", text), name  # a bare --val: use --val-fraction / --val-subset
        m = re.search(r"--split\s+\S+\s+(.*)", text)
        if m:
            assert "CSV" in m.group(1) or "csv" in m.group(1), (name, m.group(0))
        m = re.search(r"--model\s+\S+\s+(.*)", text)
        if m:
            assert not re.search(r"\blr\b|\brf\b|svm", m.group(1)), (name, m.group(0))
    assert "--algorithm" in help_of["radiomics train"]
    assert "--subset" in help_of["predict-mri"]
    for cmd in ("predict", "segment", "explain"):
        assert "-i" in help_of[cmd] and "--input" in help_of[cmd]
    for cmd, text in help_of.items():
        if "--out" in text:
            assert re.search(r"--out\s+-o", text), cmd


def test_old_option_spellings_still_work(tmp_path: Path, build_dataset) -> None:
    ds = build_dataset(tmp_path / "us")
    proc = run("split", ds.root, "--out", tmp_path / "s.csv", "--val", "0.2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "note: --val is deprecated; use --val-fraction" in proc.stderr


def test_input_option_is_the_same_as_arguments(tmp_path: Path) -> None:
    bad = _corrupt_png(tmp_path / "bad.png")
    a, b = run("predict", bad), run("predict", "-i", bad)
    assert a.returncode == b.returncode == 2 and a.stderr == b.stderr
    none = run("predict")
    assert none.returncode == 2 and "no input given" in none.stderr


# ----------------------------------------------------------------------------------- 20.12 models
def test_models_lists_every_shipped_model_with_figure_source_and_size() -> None:
    from liverfib.models.assets import ASSETS_DIR as ASSETS

    proc = run("models", "--json")
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    shipped = {m["name"]: m for m in listing["shipped"]}
    assert set(shipped) == {p.name for p in ASSETS.iterdir() if (p / "bundle.yaml").is_file()}  # every shipped bundle
    for m in shipped.values():
        assert m["task"] and m["figure"] and m["figure_source"] and m["size_mb"] > 0
    assert shipped["mre_seg_default"]["synthetic"] and shipped["mri_staging_synthetic"]["synthetic"]
    assert "tf_efficientnet_lite0" in {b["name"] for b in listing["backbones"]}


# ------------------------------------------------------------------------ 20.11 unreadable-file policy
def test_split_lists_the_files_it_left_out(tmp_path: Path, build_dataset, one_line_error) -> None:
    ds = build_dataset(tmp_path / "us")
    proc = run("split", ds.root, "-o", tmp_path / "s.csv", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_unreadable"] == len(summary["unreadable"]) == 1
    text = run("split", ds.root, "-o", tmp_path / "s2.csv").stdout
    assert "left out 1 unreadable file(s)" in text and "skipped: " in text and "broken.png" in text
    line = one_line_error(run("split", ds.root, "-o", tmp_path / "s3.csv", "--strict"))
    assert line.startswith("error: --strict: 1 unreadable file(s)")
    assert not (tmp_path / "s3.csv").exists()


def test_library_warnings_are_one_line() -> None:
    from liverfib.cli import _one_line_warning

    code = (
        "import warnings, sys\n"
        "from liverfib.cli import _one_line_warning\n"
        "warnings.showwarning = _one_line_warning\n"
        "from sklearn.exceptions import ConvergenceWarning\n"
        "for _ in range(3):\n"
        "    warnings.warn('lbfgs failed to converge (status=1):\\nSTOP: TOTAL NO. OF ITERATIONS', ConvergenceWarning)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.stderr.splitlines() == ["warning: lbfgs failed to converge (status=1): (ConvergenceWarning)"]
    assert callable(_one_line_warning)
