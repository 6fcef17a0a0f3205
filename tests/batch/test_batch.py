"""`liverfib batch` on a local in-process Ray: one row per input, errors recorded, resume, = predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from liverfib.pipeline.batch import read_batch_table, run_batch  # noqa: E402
from liverfib.pipeline.predict import run_predict  # noqa: E402

N_GOOD = 14


@pytest.fixture(scope="module")
def ray_local():
    """One in-process Ray for this module (run_batch reuses a running Ray and leaves it running)."""
    import os

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, make_us_image) -> Path:
    """14 synthetic B-mode images (two devices, one a byte copy via a link stub) + 2 corrupt files."""
    from PIL import Image

    root = tmp_path_factory.mktemp("batch_in")
    rng = np.random.default_rng(7)
    for i in range(N_GOOD - 1):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        Image.fromarray(make_us_image(rng, "A" if i % 2 else "B")).save(sub / f"img{i:02d}.png")
    (root / "b" / "copy.png").write_text("img00.png")  # a link stub: a second input, same content
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # truncated PNG
    (root / "empty.jpg").write_bytes(b"")
    return root


def _rows(out: Path) -> list[dict]:
    return read_batch_table(out).to_pylist()


@pytest.fixture(scope="module")
def first_run(ray_local, folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """``(inputs, out, summary)`` of one us-staging job on a copy of ``folder`` (later tests resume it)."""
    import shutil

    src = tmp_path_factory.mktemp("first") / "in"
    shutil.copytree(folder, src, symlinks=True)
    out = src.parent / "out"
    summary, _ = run_batch(src, task="us-staging", out=out, batch_size=4, shard_size=5, workers=2)
    return src, out, summary


def test_every_input_once_errors_recorded_and_equal_to_predict(first_run) -> None:
    src, out, summary = first_run
    rows = _rows(out)
    inputs = sorted(str(p.absolute()) for p in src.rglob("*") if p.is_file())
    assert sorted(r["path"] for r in rows) == inputs  # every input, exactly once
    assert (summary["total"], summary["ok"], summary["error"], summary["skipped"]) == (N_GOOD + 2, N_GOOD, 2, 0)
    bad = {r["path"]: r for r in rows if r["status"] == "error"}
    assert set(bad) == {str(src / "broken.png"), str(src / "empty.jpg")}
    assert all(r["error"] and "\n" not in r["error"] and r["stage"] is None for r in bad.values())
    assert "empty file" in bad[str(src / "empty.jpg")]["error"]
    assert len(list((out / "rows").glob("part-*.parquet"))) == summary["shards_written"] == 4  # 16 rows / 5
    assert not list(out.rglob("*.tmp"))
    # the link stub and its target: same content hash, both processed
    by_path = {r["path"]: r for r in rows}
    assert by_path[str(src / "b" / "copy.png")]["sha256"] == by_path[str(src / "b" / "img00.png")]["sha256"]
    # same values as `liverfib predict` on the same files
    pred, _ = run_predict([src], engine="auto")
    assert len(pred["predictions"]) == N_GOOD
    for p in pred["predictions"]:
        r = by_path[str(Path(p["path"]).absolute())]
        assert r["status"] == "ok" and r["stage"] == p["stage"]
        assert [r[f"prob_{c}"] for c in p["probabilities"]] == list(p["probabilities"].values())
        assert (r["p_ge_f2"], r["p_ge_f3"], r["p_f4"]) == (p["p_ge_f2"], p["p_ge_f3"], p["p_f4"])
    assert {r["model"] for r in rows} == {summary["model"]} and summary["model"].startswith("default@")


def test_resume_redoes_only_errors_and_changes_then_nothing(first_run) -> None:
    from PIL import Image

    src, out, _ = first_run
    first = {r["path"]: r for r in _rows(out)}
    # second run: the ok rows are kept as they are; only the two error inputs run again
    s2, _ = run_batch(src, task="us-staging", out=out, batch_size=4, shard_size=5)
    assert (s2["skipped"], s2["error"], s2["ok"], s2["older_rows_replaced"]) == (N_GOOD, 2, 0, 2)
    assert sorted(r["path"] for r in _rows(out)) == sorted(first)  # still one row per input
    # the user fixes the two files and one image changes: those three run, their rows replace the old
    Image.open(src / "a" / "img01.png").save(src / "broken.png")
    Image.open(src / "a" / "img03.png").convert("RGB").save(src / "empty.jpg", format="JPEG")
    Image.open(src / "a" / "img05.png").save(src / "a" / "img01.png")
    s3, _ = run_batch(src, task="us-staging", out=out, batch_size=4, shard_size=5)
    assert (s3["skipped"], s3["ok"], s3["error"], s3["older_rows_replaced"]) == (N_GOOD - 1, 3, 0, 3)
    rows3 = _rows(out)
    assert sorted(r["path"] for r in rows3) == sorted(first) and all(r["status"] == "ok" for r in rows3)
    # a further run does nothing: Ray is not even asked, no shard is written or touched
    shards = {f: f.stat().st_mtime_ns for f in (out / "rows").glob("part-*.parquet")}
    s4, _ = run_batch(src, task="us-staging", out=out, batch_size=4, shard_size=5)
    assert (s4["skipped"], s4["ok"], s4["error"], s4["shards_written"], s4["workers"]) == (N_GOOD + 2, 0, 0, 0, 0)
    assert {f: f.stat().st_mtime_ns for f in (out / "rows").glob("part-*.parquet")} == shards


def test_manifest_carries_columns_and_us_segment_writes_masks(ray_local, folder: Path, tmp_path: Path) -> None:
    import csv

    manifest = tmp_path / "manifest.csv"
    files = sorted((folder / "a").glob("*.png"))[:3]
    with manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "patient"])
        w.writerows([[str(f), f"P{i}"] for i, f in enumerate(files)] + [[str(files[0]), "P0"]])  # a repeat
    out = tmp_path / "seg"
    summary, _ = run_batch(manifest, task="us-segment", out=out, batch_size=2)
    rows = _rows(out)
    assert summary["total"] == 3 and sorted(r["path"] for r in rows) == sorted(str(f) for f in files)
    assert {r["patient"] for r in rows} == {"P0", "P1", "P2"}
    for r in rows:
        assert r["status"] == "ok" and Path(r["mask_path"]).is_file() and r["area_px"] >= 0


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    from liverfib.errors import ConfigError, InputError

    with pytest.raises(ConfigError, match="Unknown task 'us-stage'.*us-staging"):
        run_batch(tmp_path, task="us-stage", out=tmp_path / "o")
    with pytest.raises(InputError, match="folder or a manifest"):
        run_batch(tmp_path / "nope", task="us-staging", out=tmp_path / "o")
    (tmp_path / "m.csv").write_text("file\nx.png\n")
    with pytest.raises(InputError, match="'path' column"):
        run_batch(tmp_path / "m.csv", task="us-staging", out=tmp_path / "o")


def test_volumes_and_mre_exams_equal_their_commands(ray_local, tmp_path: Path) -> None:
    """ct-segment on a NIfTI volume gives `segment --modality ct`'s volume; mre gives `liverfib mre`'s stage."""
    from liverfib.image import Image
    from liverfib.io import write_nifti
    from liverfib.pipeline import run_mre, run_phantom_mre, run_segment_volume

    vols = tmp_path / "vols"
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:12, :48, :48]
    body = ((z - 6) / 5.0) ** 2 + ((y - 24) / 16.0) ** 2 + ((x - 24) / 18.0) ** 2 < 1
    write_nifti(Image((body * 60 + rng.normal(0, 5, body.shape)).astype(np.int16), spacing_mm=(3.0, 2.0, 2.0),
                      modality="CT"), vols / "case1.nii.gz")
    (vols / "notes.txt").write_text("not a volume")  # ignored by the volume listing
    s_ct, _ = run_batch(vols, task="ct-segment", out=tmp_path / "ct", workers=1)
    ref, _ = run_segment_volume([vols / "case1.nii.gz"], out=tmp_path / "ref")
    (row,) = _rows(tmp_path / "ct")
    assert s_ct["total"] == 1 and row["status"] == "ok" and Path(row["mask_path"]).is_file()
    assert row["volume_ml"] == ref["results"][0]["volume_ml"]

    exams = tmp_path / "exams"
    run_phantom_mre(2, 0, exams)
    s_mre, _ = run_batch(exams, task="mre", out=tmp_path / "mre", workers=1)
    rows = {Path(r["path"]).name: r for r in _rows(tmp_path / "mre")}
    assert s_mre["total"] == 2 and all(r["status"] == "ok" for r in rows.values())
    for exam in sorted(p for p in exams.iterdir() if p.is_dir()):
        summary, _ = run_mre(exam)
        assert rows[exam.name]["stage"] == summary["stage"]
        assert rows[exam.name]["mean_stiffness_kpa"] == pytest.approx(summary["mean_stiffness_kpa"], abs=1e-9)


def _ct_slice(path: Path, z: float = 0.0) -> Path:
    """One textured int16 CT slice of a series (0.8 x 0.6 mm pixels, 5 mm apart)."""
    from pydicom import uid
    from pydicom.dataset import Dataset, FileMetaDataset

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = uid.CTImageStorage, uid.generate_uid()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID, ds.Modality = "1.2.3", "1.2.3.4", "1.2.3.9", "CT"
    arr = np.random.default_rng(int(z)).normal(100, 40, (48, 40)).astype(np.int16)
    ds.set_pixel_data(arr, "MONOCHROME2", 16, generate_instance_uid=False)
    ds.PixelSpacing, ds.SliceThickness = [0.8, 0.6], 5.0
    ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0.0, 0.0, z]
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_ct_slice_in_an_ultrasound_batch_is_an_error_row(ray_local, tmp_path: Path, make_us_image) -> None:
    """Issue 20 item 1: the checks of `predict` (us-staging) and `segment --modality us` (us-segment,
    radiomics) refuse a CT DICOM; its row says why, the ultrasound image beside it is processed."""
    from PIL import Image

    src = tmp_path / "in"
    _ct_slice(src / "ct.dcm")
    Image.fromarray(make_us_image(np.random.default_rng(3), "A")).save(src / "us.png")
    for task, reason in (("us-staging", "modality CT is not ultrasound"),
                         ("us-segment", "DICOM modality CT, not ultrasound"),
                         ("radiomics", "DICOM modality CT, not ultrasound")):
        summary, _ = run_batch(src, task=task, out=tmp_path / task, workers=1, batch_size=2)
        rows = {Path(r["path"]).name: r for r in _rows(tmp_path / task)}
        assert rows["ct.dcm"]["status"] == "error" and reason in rows["ct.dcm"]["error"], (task, rows["ct.dcm"])
        if task != "radiomics":  # (the liver ROI of a synthetic image may be too small to extract)
            assert rows["us.png"]["status"] == "ok", (task, rows["us.png"])


def test_volume_tasks_check_the_dicom_modality(tmp_path: Path) -> None:
    """mr-segment refuses a CT series (as `segment --modality mr`) before the segmenter runs."""
    from liverfib.errors import InputError
    from liverfib.pipeline.batch_tasks import BATCH_TASKS

    series = tmp_path / "ct_series"
    for k in range(4):
        _ct_slice(series / f"s{k}.dcm", z=5.0 * k)
    with pytest.raises(InputError, match="DICOM modality CT but --modality mr was given; use --modality ct"):
        BATCH_TASKS["mr-segment"].run(None, [None], [series], tmp_path / "masks")
