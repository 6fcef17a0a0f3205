"""ONNX Runtime engine: same probabilities as torch, cached export, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from liverfib.errors import ConfigError, LiverfibError
from liverfib.inference import onnx_engine
from liverfib.inference.predictor import load_predictor

pytest.importorskip("onnxruntime")


def test_onnx_matches_torch_and_caches(trained_run, make_us_image, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = [make_us_image(rng, kind) for kind in "ABAB"]
    ref = load_predictor(trained_run.checkpoint, engine="torch")
    fast = load_predictor(trained_run.checkpoint, engine="onnx")
    assert fast.describe()["engine"] == "onnx" and fast.onnx is not None
    p_ref, p_fast = ref.predict_arrays(arrays), fast.predict_arrays(arrays)
    np.testing.assert_allclose(p_fast, p_ref, atol=1e-4)
    np.testing.assert_allclose(fast.predict_arrays(arrays, tta=True), ref.predict_arrays(arrays, tta=True), atol=1e-4)
    # the cache is shared by the session's tests: look at this model's entry only
    key = onnx_engine.weights_key(ref.net, ref.preprocess.config.img_size)
    entry = Path(os.environ["LIVERFIB_CACHE"]) / "onnx" / f"{key}.onnx"
    assert entry.is_file()  # exported once ...
    stamp = entry.stat().st_mtime_ns
    again = load_predictor(trained_run.checkpoint, engine="auto")
    assert again.engine == "onnx"
    assert entry.stat().st_mtime_ns == stamp  # ... and reused, not exported again


def test_corrupt_cache_entry_is_replaced(trained_run, make_us_image) -> None:
    ref = load_predictor(trained_run.checkpoint, engine="torch")
    key = onnx_engine.weights_key(ref.net, ref.preprocess.config.img_size)
    path = Path(os.environ["LIVERFIB_CACHE"]) / "onnx" / f"{key}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an onnx model")
    fast = load_predictor(trained_run.checkpoint, engine="onnx")
    arr = [make_us_image(np.random.default_rng(1), "A")]
    np.testing.assert_allclose(fast.predict_arrays(arr), ref.predict_arrays(arr), atol=1e-4)


def test_unknown_engine_is_a_config_error(trained_run) -> None:
    with pytest.raises(ConfigError, match="engine"):
        load_predictor(trained_run.checkpoint, engine="tensorrt")


def test_onnx_requested_without_onnxruntime(monkeypatch) -> None:
    monkeypatch.setattr(onnx_engine, "onnxruntime_available", lambda: False)
    assert onnx_engine.resolve_engine("auto") == "torch"
    with pytest.raises(LiverfibError, match="onnxruntime"):
        onnx_engine.resolve_engine("onnx")
