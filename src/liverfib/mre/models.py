"""Liver segmentation networks for MRE (registry as plain data) and their bundles.

All models map ``(B, C, H, W)`` float inputs (C = 1: the normalised magnitude, see :mod:`liverfib.mre.segment`)
to ``(B, 1, H, W)`` logits. H and W must be multiples of 32.

* ``unet_resnext50``: smp ``Unet`` with a ``resnext50_32x4d`` encoder, the published model
  (random init here: no ImageNet weights are available offline).
* ``unet_plain``: MONAI ``BasicUNet`` (the plain U-Net of Ronneberger et al., 2015), the published
  baseline.
* ``unet_mobilenetv2``: smp ``Unet`` with a ``mobilenet_v2`` encoder and a slim decoder
  (128, 64, 32, 16, 8); 4.1 M parameters, 8 MB in float16 -- the shipped default, chosen to fit the
  20 MB asset budget (``unet_resnext50`` is 32 M parameters, 64 MB even in float16).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liverfib.errors import unknown_choice

if TYPE_CHECKING:
    import torch

    from liverfib.models.bundle import Bundle

__all__ = [
    "SEG_MODELS",
    "list_seg_models",
    "create_seg_model",
    "seg_bundle_fields",
    "seg_info",
]

#: name -> (library, constructor keyword arguments, description)
SEG_MODELS: dict[str, tuple[str, dict[str, Any], str]] = {
    "unet_resnext50": (
        "smp",
        {"encoder_name": "resnext50_32x4d"},
        "smp Unet, ResNeXt50-32x4d encoder (published model; random init offline)",
    ),
    "unet_plain": (
        "monai",
        {"features": (32, 32, 64, 128, 256, 32)},
        "MONAI BasicUNet, plain U-Net (published baseline; random init)",
    ),
    "unet_mobilenetv2": (
        "smp",
        {"encoder_name": "mobilenet_v2", "decoder_channels": (128, 64, 32, 16, 8)},
        "smp Unet, MobileNetV2 encoder, slim decoder (shipped default; random init)",
    ),
}


def list_seg_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in SEG_MODELS if fnmatch.fnmatch(n, pattern))


def create_seg_model(name: str, in_channels: int = 1) -> torch.nn.Module:
    """Build a randomly initialised model (no download is ever attempted)."""
    if name not in SEG_MODELS:
        raise unknown_choice("segmentation model", name, SEG_MODELS)
    lib, kwargs, _ = SEG_MODELS[name]
    if lib == "smp":
        import segmentation_models_pytorch as smp

        return smp.Unet(encoder_weights=None, in_channels=in_channels, classes=1, **kwargs)
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=1, **kwargs)


def seg_bundle_fields(*, model: str, in_channels: int, img_size: int, train_config: dict[str, Any],
                      metrics: dict[str, Any], synthetic: bool = True) -> dict[str, Any]:
    """``save_bundle`` keyword arguments of an ``mre-seg`` model (``metrics``: validation figures)."""
    return {
        "task": "mre-seg",
        "network": {"name": model, "args": {"in_channels": in_channels}},
        "classes": ["background", "liver"],
        "preprocessing": {"img_size": img_size},
        "input": {"size": [img_size, img_size], "channels": in_channels},
        "metrics": {"split": "val", "values": metrics},
        "training_data": {"n_train_exams": metrics.get("n_train_exams")},
        "seed": train_config.get("seed"),
        "synthetic": synthetic,
        "extra": {"train_config": train_config},
    }


def seg_info(bundle: Bundle, path: str | Path) -> dict[str, Any]:
    """What the MRE workflow records of a loaded ``mre-seg`` bundle read from ``path``: ``model``,
    ``in_channels``, ``img_size``, ``metrics``, ``synthetic``, the bundle's ``extra`` (``train_config``)
    and ``path``."""
    return {"model": bundle.network["name"], "in_channels": int(bundle.network["args"]["in_channels"]),
            "img_size": int(bundle.preprocessing["img_size"]), "metrics": bundle.meta["metrics"].get("values", {}),
            "synthetic": bundle.synthetic, **bundle.extra, "path": str(path)}
