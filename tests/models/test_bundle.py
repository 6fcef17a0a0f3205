"""Model bundles: fp16 safetensors + bundle.yaml, folder or zip, and one-line ModelErrors for bad input."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from liverfib.errors import LiverfibError, ModelError
from liverfib.models.bundle import BUNDLE_FORMAT, load_bundle, save_bundle
from liverfib.models.staging import StagingNet


def _save(net: StagingNet, path: Path) -> Path:
    return save_bundle(path, net, task="us-staging", network={"name": "StagingNet", "args": net.config()},
                       classes=["F0", "F1"], preprocessing={"img_size": 64}, seed=3, synthetic=True,
                       metrics={"split": "val", "values": {"accuracy": 0.5}}, extra={"thresholds": {"ge_f2": 0.4}})


@pytest.fixture(scope="module")
def net() -> StagingNet:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return StagingNet("mobilenetv3_large_100", pretrained=False, feature_stages=(1,)).eval()


@pytest.fixture(scope="module")
def bundle_dir(net: StagingNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save(net, tmp_path_factory.mktemp("b") / "model")


def _one_line_model_error(path: Path, **kw: object) -> str:
    with pytest.raises(ModelError) as info:
        load_bundle(path, **kw)  # type: ignore[arg-type]
    msg = str(info.value)
    assert isinstance(info.value, LiverfibError)
    assert "\n" not in msg and len(msg) < len(str(path)) + 200, msg
    assert msg.startswith(f"{path}: ")
    return msg


def test_folder_layout_and_yaml_fields(bundle_dir: Path) -> None:
    assert sorted(p.name for p in bundle_dir.iterdir()) == ["bundle.yaml", "weights.safetensors"]
    meta = yaml.safe_load((bundle_dir / "bundle.yaml").read_text())
    assert meta["format"] == BUNDLE_FORMAT and meta["task"] == "us-staging"
    for key in ("network", "classes", "preprocessing", "input", "metrics", "training_data", "seed",
                "code_version", "trained_at", "synthetic", "weights_sha256", "extra"):
        assert key in meta, key
    assert meta["synthetic"] is True and meta["seed"] == 3 and meta["metrics"]["split"] == "val"


def test_float16_storage_float32_load_and_same_outputs(net: StagingNet, bundle_dir: Path) -> None:
    from safetensors.torch import load_file

    stored = load_file(bundle_dir / "weights.safetensors")
    floats = [v for v in stored.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert stored["encoder.bn1.num_batches_tracked"].dtype == torch.int64
    b = load_bundle(bundle_dir, task="us-staging")
    loaded = StagingNet.from_bundle(b)
    assert all(p.dtype == torch.float32 for p in loaded.parameters()) and not loaded.training
    assert b.classes == ["F0", "F1"] and b.extra["thresholds"] == {"ge_f2": 0.4} and b.synthetic
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    half = StagingNet("mobilenetv3_large_100", pretrained=False, feature_stages=(1,)).eval()
    half.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in net.state_dict().items()})
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), half(x), rtol=0, atol=0)


def test_zip_round_trip_and_yaml_path(net: StagingNet, bundle_dir: Path, tmp_path: Path) -> None:
    z = _save(net, tmp_path / "model.zip")
    assert zipfile.is_zipfile(z)
    a, b = load_bundle(z), load_bundle(bundle_dir / "bundle.yaml")
    assert a.meta["weights_sha256"] == b.meta["weights_sha256"]
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in a.weights)


def test_wrong_task(bundle_dir: Path) -> None:
    assert "a 'us-staging' model, expected a model for 'mri-seg'" in _one_line_model_error(bundle_dir, task="mri-seg")


def test_missing_and_not_a_bundle(tmp_path: Path) -> None:
    assert "model not found" in _one_line_model_error(tmp_path / "nope")
    assert "not a model bundle" in _one_line_model_error(tmp_path)


def test_old_pt_checkpoints_point_to_the_converter(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"PK\x03\x04 old torch zip")
    assert "tools/convert_assets.py" in _one_line_model_error(path)


@pytest.mark.parametrize("name", ["truncated", "empty", "random", "text"])
def test_corrupt_weights(bundle_dir: Path, tmp_path: Path, name: str) -> None:
    good = (bundle_dir / "weights.safetensors").read_bytes()
    data = {"truncated": good[: len(good) // 2], "empty": b"", "random": os.urandom(4096),
            "text": b"hello, I am not a model\n"}[name]
    bad = tmp_path / name
    bad.mkdir()
    (bad / "bundle.yaml").write_text((bundle_dir / "bundle.yaml").read_text())
    (bad / "weights.safetensors").write_bytes(data)
    assert "does not match bundle.yaml" in _one_line_model_error(bad)


def test_corrupt_zip_and_yaml(bundle_dir: Path, tmp_path: Path) -> None:
    z = tmp_path / "bad.zip"
    z.write_bytes(os.urandom(2048))
    assert "not a model bundle" in _one_line_model_error(z)
    bad = tmp_path / "badyaml"
    bad.mkdir()
    (bad / "weights.safetensors").write_bytes((bundle_dir / "weights.safetensors").read_bytes())
    (bad / "bundle.yaml").write_text("format: [unclosed\n")
    assert "not valid YAML" in _one_line_model_error(bad)
    (bad / "bundle.yaml").write_text("format: other-tool/3\n")
    assert "expected a liverfib-bundle/1 bundle, found 'other-tool/3'" in _one_line_model_error(bad)


def test_weights_that_do_not_fit_the_backbone(bundle_dir: Path) -> None:
    b = load_bundle(bundle_dir)
    other = StagingNet("tf_efficientnet_lite0", pretrained=False, feature_stages=(1,))
    with pytest.raises(ModelError, match="weights do not fit tf_efficientnet_lite0") as info:
        b.load_into(other, "tf_efficientnet_lite0")
    assert "\n" not in str(info.value)


def test_rewrite_is_complete_or_old(net: StagingNet, bundle_dir: Path, tmp_path: Path) -> None:
    """A yaml never pairs with other weights: re-saving replaces both, leaving no temporary files."""
    path = _save(net, tmp_path / "m")
    first = load_bundle(path).meta["weights_sha256"]
    torch.manual_seed(5)
    other = StagingNet("mobilenetv3_large_100", pretrained=False, feature_stages=(1,))
    _save(other, path)
    assert load_bundle(path).meta["weights_sha256"] != first
    assert sorted(p.name for p in path.iterdir()) == ["bundle.yaml", "weights.safetensors"]
