"""Segmentation model contract: every registered model gives (B, 1, H, W) logits and round-trips."""

from __future__ import annotations

import pytest
import torch

from liverfib.errors import ConfigError, ModelError
from liverfib.models.bundle import load_bundle, save_bundle
from liverfib.models.tasks import network_from_bundle
from liverfib.mre.models import SEG_MODELS, create_seg_model, seg_bundle_fields, seg_info


def _load(path):
    bundle = load_bundle(path, task="mre-seg")
    return network_from_bundle(bundle), seg_info(bundle, path)


@pytest.mark.parametrize("name", sorted(SEG_MODELS))
def test_contract(name, tmp_path):
    torch.manual_seed(0)
    net = create_seg_model(name).eval()
    x = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        assert net(x).shape == (1, 1, 64, 64)
    path = save_bundle(tmp_path / "m", net, **seg_bundle_fields(model=name, in_channels=1, img_size=64,
                                                                train_config={"seed": 0}, metrics={}))
    a, info = _load(path)
    b, _ = _load(path)
    assert info["model"] == name and info["img_size"] == 64
    with torch.inference_mode():
        ya, yb, y0 = a(x), b(x), net(x)
    torch.testing.assert_close(ya, yb)
    assert torch.allclose(ya, y0, atol=0.05 * float(y0.abs().max()) + 1e-3)  # float16 storage


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'unet_plain'"):
        create_seg_model("unet_plan")
    with pytest.raises(ModelError, match="not found"):
        _load(tmp_path / "none")
    with pytest.raises(ModelError, match="not found; train one with 'liverfib train-seg --task mre'"):
        from liverfib.pipeline.mre_exam import mre_segmenter

        mre_segmenter(str(tmp_path / "none"))
    (tmp_path / "bad.zip").write_bytes(b"not a bundle")
    with pytest.raises(ModelError, match="not a model bundle"):
        _load(tmp_path / "bad.zip")
