"""Contract test over every registered segmentation network."""

from __future__ import annotations

import pytest
import torch

from liverfib.errors import ConfigError
from liverfib.models.segmentation import build_seg_model, get_seg_spec, list_seg_archs


@pytest.mark.parametrize("name", list_seg_archs())
def test_seg_contract(name: str) -> None:
    torch.manual_seed(0)
    net = build_seg_model(name, pretrained=False).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y1, y2 = net(x), net(x)
    assert y1.shape == (2, 1, 64, 64)
    assert torch.equal(y1, y2)
    clone = build_seg_model(name, pretrained=False).eval()
    clone.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert torch.allclose(clone(x), y1)


def test_lite0_encoder_gets_imagenet_weights() -> None:
    spec = get_seg_spec("unet-lite0")
    assert spec.weights.startswith("imagenet:")
    a = build_seg_model("unet-lite0", pretrained=True)
    b = build_seg_model("unet-lite0", pretrained=True)
    w = a.encoder.model.conv_stem.weight
    assert torch.equal(w, b.encoder.model.conv_stem.weight)  # loaded, not random
    assert float(w.std()) > 0.05


def test_unknown_arch_lists_choices() -> None:
    with pytest.raises(ConfigError, match="unet-lite0"):
        get_seg_spec("unet-lite")
