"""Liver segmentation networks for MRE (registry as plain data) and their checkpoints.

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

from liverfib.errors import ModelError, unknown_choice

if TYPE_CHECKING:
    import torch

__all__ = [
    "SEG_MODELS",
    "SEG_CHECKPOINT_FORMAT",
    "list_seg_models",
    "create_seg_model",
    "save_seg_checkpoint",
    "load_seg_checkpoint",
    "default_seg_checkpoint",
]

SEG_CHECKPOINT_FORMAT = "liverfib-mre-seg/1"

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


def save_seg_checkpoint(path: Path, net: torch.nn.Module, *, model: str, in_channels: int, img_size: int,
                        **fields: Any) -> Path:
    """Save weights as float16 plus what inference needs; atomic (tmp file + rename)."""
    import torch

    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    payload = {"format": SEG_CHECKPOINT_FORMAT, "model": model, "in_channels": in_channels,
               "img_size": img_size, "state_dict": state, **fields}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def default_seg_checkpoint() -> Path:
    return Path(__file__).resolve().parent.parent / "assets" / "mre_seg_default.pt"


def load_seg_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load ``path`` (or ``"default"``: the shipped model) into an eval-mode float32 model.

    Returns ``(net, info)`` with ``info`` = the checkpoint fields except the weights.
    """
    from liverfib.models.checkpoint import load_checkpoint, load_state

    path = default_seg_checkpoint() if str(path) == "default" else Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: segmentation checkpoint not found; train one with "
                         "'liverfib train-seg --task mre' or use --model default")
    payload = load_checkpoint(path, fmt=SEG_CHECKPOINT_FORMAT)
    net = load_state(create_seg_model(payload["model"], payload["in_channels"]), payload,
                     f"model '{payload['model']}' ({path})")
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    info["path"] = str(path)
    return net, info
