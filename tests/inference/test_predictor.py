"""Predictor: B-mode checks, per-file errors that do not stop a batch, and the record format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liverfib.errors import InputError, LiverfibError, ModelError
from liverfib.image import Image
from liverfib.inference import predictor as predictor_module
from liverfib.inference.predictor import PredictOutput, check_bmode, load_predictor
from liverfib.io import read_image

CLASSES = ["F0", "F1", "F2", "F3", "F4"]


@pytest.fixture(scope="module")
def predictor(trained_run):
    return load_predictor(trained_run.checkpoint)


@pytest.fixture
def scans(make_us_image, us_frame, tmp_path: Path) -> list[Path]:
    """Three readable synthetic scans (two devices)."""
    rng = np.random.default_rng(3)
    paths = []
    for k, kind in enumerate("ABA"):
        p = tmp_path / f"scan{k}.png"
        p.write_bytes(us_frame.encode(make_us_image(rng, kind), "PNG"))
        paths.append(p)
    return paths


def _write_rgb(path: Path, rgb: np.ndarray) -> Path:
    from PIL import Image as PILImage

    PILImage.fromarray(rgb).save(path)
    return path


# ---------------------------------------------------------------------------------- check_bmode
def test_bmode_scan_passes(make_us_image) -> None:
    assert check_bmode(Image(make_us_image(np.random.default_rng(0)), modality="US")) is None


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_blank_image_is_an_input_error(dtype) -> None:
    with pytest.raises(InputError, match="blank"):
        check_bmode(Image(np.full((64, 64), 40, dtype=dtype), path=Path("blank.png")))


def test_near_blank_noise_is_an_input_error() -> None:
    arr = (40 + np.random.default_rng(0).integers(0, 2, (64, 64))).astype(np.uint8)  # std 0.5
    with pytest.raises(InputError, match="blank"):
        check_bmode(Image(arr))


@pytest.mark.parametrize("modality", ["MR", "CT"])
def test_other_modalities_are_input_errors(make_us_image, modality: str) -> None:
    img = Image(make_us_image(np.random.default_rng(0)), modality=modality, path=Path("x.dcm"))
    with pytest.raises(InputError, match=f"modality {modality} is not ultrasound"):
        check_bmode(img)


def test_multi_frame_is_an_input_error(make_us_image) -> None:
    frames = np.stack([make_us_image(np.random.default_rng(k)) for k in range(2)])
    with pytest.raises(InputError, match="pick a frame"):
        check_bmode(Image(frames, modality="US"))


def test_colour_image_gets_a_warning(make_us_image, tmp_path: Path) -> None:
    gray = make_us_image(np.random.default_rng(0))
    rgb = np.repeat(gray[..., None], 3, axis=2)
    rgb[40:70, 60:100] = (200, 30, 30)  # a Doppler colour box
    image = read_image(_write_rgb(tmp_path / "doppler.png", rgb))
    warning = check_bmode(image)
    assert warning is not None and "colour content" in warning and "Doppler" in warning


def test_gray_saved_as_rgb_gets_no_warning(make_us_image, tmp_path: Path) -> None:
    gray = make_us_image(np.random.default_rng(0))
    rgb = np.repeat(gray[..., None], 3, axis=2)
    assert check_bmode(read_image(_write_rgb(tmp_path / "gray.png", rgb))) is None
    rgb[0:2, 0:2] = (255, 0, 0)  # a few coloured pixels (a logo) stay below the warning fraction
    assert check_bmode(read_image(_write_rgb(tmp_path / "logo.png", rgb))) is None


# ------------------------------------------------------------------------------------- predict
def test_predict_paths_keeps_going_past_bad_files(
    predictor, scans: list[Path], make_us_image, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    blank = tmp_path / "blank.png"
    _write_rgb(blank, np.full((64, 64, 3), 30, np.uint8))
    missing = tmp_path / "missing.png"
    gray = make_us_image(np.random.default_rng(9))
    doppler = np.repeat(gray[..., None], 3, axis=2)
    doppler[40:70, 60:100] = (30, 30, 220)
    colour = _write_rgb(tmp_path / "doppler.png", doppler)

    order = [scans[0], corrupt, scans[1], blank, missing, colour, scans[2]]
    out = predictor.predict_paths(order, batch_size=2)

    assert out.paths == [scans[0], scans[1], colour, scans[2]]
    assert [p for p, _ in out.errors] == [corrupt, blank, missing]
    messages = dict(out.errors)
    assert "corrupt" in messages[corrupt] and "blank" in messages[blank] and "not found" in messages[missing]
    assert all("\n" not in m for m in messages.values())
    assert out.probs.shape == (4, 5)
    np.testing.assert_allclose(out.probs.sum(1), 1.0, atol=1e-5)
    assert out.warnings[2] is not None and out.warnings[0] is None
    # probabilities stay aligned with their files across batches with holes
    alone = predictor.predict_arrays([read_image(p).array for p in out.paths])
    np.testing.assert_allclose(out.probs, alone, atol=1e-4)  # batch composition: float noise only


def test_predict_arrays_uses_the_checkpoint_preprocessing(predictor, scans: list[Path]) -> None:
    from liverfib.preprocess.transforms import PreprocessConfig, UltrasoundPreprocess

    arrays = [read_image(p).array for p in scans]
    probs = predictor.predict_arrays(arrays)
    assert predictor.preprocess.config.img_size == 64
    original = predictor.preprocess
    try:
        predictor.preprocess = UltrasoundPreprocess(PreprocessConfig(img_size=96, fan_mask=True))
        assert not np.allclose(predictor.predict_arrays(arrays), probs, atol=1e-4)
    finally:
        predictor.preprocess = original


def test_tta_averages_a_flip(predictor, scans: list[Path]) -> None:
    arrays = [read_image(p).array for p in scans]
    plain = predictor.predict_arrays(arrays)
    flipped = predictor.predict_arrays([a[:, ::-1] for a in arrays])
    tta = predictor.predict_arrays(arrays, tta=True)
    np.testing.assert_allclose(tta, 0.5 * (plain + flipped), atol=1e-5)


def test_nothing_readable_gives_empty_probs(predictor, tmp_path: Path) -> None:
    out = predictor.predict_paths([tmp_path / "a.png", tmp_path / "b.png"])
    assert out.probs.shape == (0, 5) and out.paths == [] and len(out.errors) == 2
    assert out.as_records() == []


def test_bad_batch_size(predictor, scans: list[Path]) -> None:
    with pytest.raises(InputError, match="--batch-size must be at least 1, got 0"):
        predictor.predict_paths(scans, batch_size=0)


# --------------------------------------------------------------------------------------- records
def test_as_records() -> None:
    probs = np.array([[0.1, 0.2, 0.3, 0.25, 0.15], [0.6, 0.3, 0.05, 0.03, 0.02]])
    out = PredictOutput([Path("a.png"), Path("b.png")], probs, CLASSES, [None, "colour content"])
    a, b = out.as_records()
    assert a["path"] == "a.png" and a["stage"] == "F2" and b["stage"] == "F0"
    assert list(a["probabilities"]) == CLASSES
    assert a["probabilities"]["F3"] == 0.25
    assert a["p_ge_f2"] == pytest.approx(0.7) == sum(a["probabilities"][c] for c in CLASSES[2:])
    assert a["p_ge_f3"] == pytest.approx(0.4) and a["p_f4"] == pytest.approx(0.15)
    assert "warning" not in a and b["warning"] == "colour content"


def test_records_of_a_real_prediction(predictor, scans: list[Path]) -> None:
    for rec in predictor.predict_paths(scans).as_records():
        assert rec["stage"] in CLASSES
        assert len(rec["probabilities"]) == 5
        assert sum(rec["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert rec["p_ge_f2"] == pytest.approx(sum(rec["probabilities"][c] for c in CLASSES[2:]), abs=1e-3)
        assert rec["stage"] == max(rec["probabilities"], key=rec["probabilities"].get)


# ----------------------------------------------------------------------------------- load_predictor
def test_load_predictor_from_path(predictor, trained_run) -> None:
    assert predictor.source == str(trained_run.checkpoint)
    assert predictor.describe()["backbone"] == "tf_efficientnet_lite0"
    assert predictor.thresholds is not None


def test_default_model(monkeypatch: pytest.MonkeyPatch, trained_run, tmp_path: Path) -> None:
    monkeypatch.setattr(predictor_module, "DEFAULT_MODEL_PATH", trained_run.checkpoint)
    assert load_predictor("default").describe()["name"] == "default"
    monkeypatch.setattr(predictor_module, "DEFAULT_MODEL_PATH", tmp_path / "gone.pt")
    with pytest.raises(LiverfibError, match="shipped default model is missing"):
        load_predictor()


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model not found"):
        load_predictor(tmp_path / "none.pt")
