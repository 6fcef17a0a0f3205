"""``liverfib radiomics extract | train | evaluate`` end to end on a tiny synthetic ultrasound set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liverfib.radiomics import read_feature_table

LIVERFIB = Path(sys.executable).with_name("liverfib")
TEXTURE = {"F0": 2.0, "F1": 5.0, "F2": 9.0}  # tissue correlation length per stage: coarser = later


def run(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LIVERFIB), *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, make_us_image, us_frame) -> Path:
    root = tmp_path_factory.mktemp("radiomics_cli")
    data = root / "us"
    rng = np.random.default_rng(0)
    for label, texture in TEXTURE.items():
        (data / label).mkdir(parents=True)
        for k in range(6):
            img = make_us_image(rng, "A", texture=texture)
            (data / label / f"{label.lower()}_{k}.png").write_bytes(us_frame.encode(img, "PNG"))
    (data / "F0" / "f0_0_copy.png").write_bytes((data / "F0" / "f0_0.png").read_bytes())
    proc = run("split", data, "--out", root / "folds.csv", "--folds", "3")
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def extracted(workdir: Path) -> Path:
    out = workdir / "features.parquet"
    proc = run(
        "radiomics", "extract", "--images", workdir / "us", "--roi", "fan", "--out", out,
        "--config", Path(__file__).parents[2] / "configs" / "radiomics_us.yaml", "--robustness", "3", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_images"] == 18  # the byte copy is extracted once
    assert summary["images_per_second"] > 0
    return out


def test_extract_writes_table_settings_and_icc(extracted: Path) -> None:
    table = read_feature_table(extracted)
    assert len(table.paths) == 18 and set(table.ids["n_copies"]) == {1, 2}
    assert {"original_firstorder_Mean", "original_shape2D_PixelSurface", "original_glszm_ZoneEntropy"} <= set(
        table.names
    )
    assert np.isfinite(table.values).all()
    assert "bin_width: 8.0" in extracted.with_suffix(".yaml").read_text()
    icc = json.loads(extracted.with_suffix(".robustness.json").read_text())["icc"]
    assert set(icc) == set(table.names)


def test_train_then_evaluate(workdir: Path, extracted: Path) -> None:
    run_dir = workdir / "run"
    proc = run(
        "radiomics", "train", "--features", extracted, "--split", workdir / "folds.csv",
        "--data", workdir / "us", "--out", run_dir, "--algorithm", "lr", "--n-boot", "50",
        "--shap-images", "12", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    m = summary["metrics"]["radiomics"]
    assert m["n"] == 18 and m["classes"] == ["F0", "F1", "F2"]
    assert m["accuracy"] > 0.5  # texture scale separates the stages; chance is 1/3
    assert m["ci95"]["accuracy"] is not None
    for name in (
        "model.joblib",
        "metrics.json",
        "train_config.yaml",
        "oof_radiomics.csv",
        "shap_summary.png",
    ):
        assert (run_dir / name).is_file(), name
    assert list(run_dir.glob("shap_waterfall_*.png"))

    # the final K-fold model is refit on every row: scoring fold0 with it is refused (issue 20.3) ...
    ev = workdir / "eval"
    args = ("radiomics", "evaluate", "--model", run_dir / "model.joblib", "--features", extracted,
            "--split", workdir / "folds.csv", "--data", workdir / "us", "--subset", "fold0",
            "--out", ev, "--n-boot", "50")  # fmt: skip
    proc = run(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "were used to fit" in proc.stderr and "out-of-fold" in proc.stderr
    assert not ev.exists()
    # ... unless asked, and then flagged
    proc = run(*args, "--allow-overlap", "--json")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert set(res["metrics"]) >= {"accuracy", "macro_auc", "auc_ge_f2", "kappa_quadratic", "ci95"}
    assert res["n_rows_seen_in_training"] == res["metrics"]["n"]
    assert (ev / "predictions.csv").is_file() and list(ev.glob("shap_waterfall_*.png"))


def test_readme_chain_grouped_split_then_deep_features_fusion(workdir: Path, extracted: Path) -> None:
    """The README radiomics chain: a held-out test scored once; deep features made by a command, fused."""
    grouped = workdir / "grouped.csv"
    proc = run("split", workdir / "us", "-o", grouped, "--val-fraction", "0.2", "--test-fraction", "0.3")
    assert proc.returncode == 0, proc.stderr
    run_dir = workdir / "run_grouped"
    proc = run("radiomics", "train", "--features", extracted, "--split", grouped, "--data", workdir / "us",
               "-o", run_dir, "--algorithm", "lr", "--n-boot", "20", "--shap-images", "0")
    assert proc.returncode == 0, proc.stderr
    proc = run("radiomics", "evaluate", "--model", run_dir / "model.joblib", "--features", extracted,
               "--split", grouped, "--data", workdir / "us", "--subset", "test", "--n-boot", "20",
               "--explain", "0", "-o", run_dir / "test", "--json")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["n_rows_seen_in_training"] == 0 and res["metrics"]["n"] > 0

    dl = workdir / "features" / "lite0_s123.parquet"
    proc = run("radiomics", "deep-features", "-i", workdir / "us", "-o", dl, "--img-size", "96", "--json")
    assert proc.returncode == 0, proc.stderr
    table = read_feature_table(dl)
    assert len(table.paths) == 18 and np.isfinite(table.values).all() and len(table.names) > 100
    proc = run("radiomics", "train", "--features", extracted, "--split", workdir / "folds.csv",
               "--data", workdir / "us", "--algorithm", "lr", "--fuse", dl, "-o", workdir / "run_fused_cli",
               "--n-boot", "20", "--shap-images", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)["metrics"]) == {"radiomics", "lite0_s123", "fusion"}  # block = file stem


def test_one_line_errors(workdir: Path, extracted: Path) -> None:
    proc = run(
        "radiomics", "extract", "--images", workdir / "us", "--roi", "lung", "--out", workdir / "x.parquet"
    )
    assert proc.returncode == 2 and "fan, liver" in proc.stderr and "Traceback" not in proc.stderr
    proc = run(
        "radiomics",
        "train",
        "--features",
        extracted,
        "--split",
        workdir / "folds.csv",
        "--out",
        workdir / "r2",
    )
    assert proc.returncode == 2 and "--data" in proc.stderr  # split paths are relative to the dataset
    try:
        import liverfib.inference.segmenter  # noqa: F401
    except ImportError:
        proc = run(
            "radiomics",
            "extract",
            "--images",
            workdir / "us",
            "--roi",
            "liver",
            "--out",
            workdir / "y.parquet",
        )
        assert proc.returncode == 2 and "segmenter" in proc.stderr


def test_train_with_fused_table_reports_every_block(workdir: Path, extracted: Path) -> None:
    """--fuse: another feature table keyed by path is stacked (nested) with the radiomics model."""
    from liverfib.pipeline.radiomics_train import run_radiomics_train
    from liverfib.radiomics import write_feature_table

    table = read_feature_table(extracted)
    rng = np.random.default_rng(1)
    stage = {"F0": 0.0, "F1": 1.0, "F2": 2.0}
    rows = [
        {"path": p, "dl_f0": stage[Path(p).parent.name] + 0.3 * rng.normal(), "dl_f1": rng.normal()}
        for p in table.paths
    ]
    fused = write_feature_table(rows, workdir / "dl.parquet")
    summary, text = run_radiomics_train(
        extracted, workdir / "folds.csv", workdir / "run_fused", data_dir=workdir / "us",
        overrides={"n_boot": 20, "shap_images": 0, "fuse_c_grid": [1.0]}, fuse=[fused],
    )  # fmt: skip
    assert set(summary["metrics"]) == {"radiomics", "dl", "fusion"}
    assert summary["metrics"]["dl"]["accuracy"] > 0.8  # the informative fused feature
    assert (workdir / "run_fused" / "oof_fusion.csv").is_file() and "fusion" in text


def test_extract_skips_unreadable_files_with_reasons(workdir: Path, tmp_path: Path) -> None:
    """Issue 20.11: a bad file is skipped and named (not the first-error abort); --strict stops."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("f0_0.png", "f1_0.png"):
        (folder / name).write_bytes((workdir / "us" / name[:2].upper() / name).read_bytes())
    (folder / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    out = tmp_path / "f.parquet"
    proc = run("radiomics", "extract", "--images", folder, "--roi", "fan", "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["n_images"] == 2 and summary["n_skipped"] == 1
    assert "zz_broken.png" in summary["errors"][0]["path"] and "corrupt" in summary["errors"][0]["error"]
    assert len(read_feature_table(out).paths) == 2
    proc = run("radiomics", "extract", "--images", folder, "--roi", "fan", "--out", tmp_path / "g.parquet",
               "--strict")
    assert proc.returncode == 2 and "zz_broken.png" in proc.stderr and not (tmp_path / "g.parquet").exists()
