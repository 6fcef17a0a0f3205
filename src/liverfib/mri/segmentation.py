"""Liver segmentation for MR and CT with MONAI: model, inference, post-processing, metrics.

Two model kinds share one checkpoint format (``liverfib-mri-segmentation/1``):

* ``spatial_dims=2`` (the shipped default): a MONAI UNet applied to axial slices. Each slice is
  padded to a square, resized to ``img_size`` and run through ``sliding_window_inference``; the
  probabilities are resized back. 2D PNG slices and 3D volumes both work.
* ``spatial_dims=3``: a MONAI UNet/SegResNet run with 3D ``sliding_window_inference`` over
  ``roi_size`` patches of the intensity-normalised volume.

Intensities (:func:`input_intensity`): with ``ct_window`` set, an input that holds Hounsfield
units (air at about -1000 HU) is clipped to that window; everything else (MR scanner units, 8-bit
PNG slices whose grey levels are not HU) is clipped to the 0.5-99.5 percentiles of the whole input.
Both are scaled to [0, 1]. With ``context=1`` a 2D model is 2.5D: slices ``k-1, k, k+1`` of a
volume enter as its three input channels (a lone 2D slice is repeated). Post-processing: a 3D
result keeps only its largest connected component (``scipy.ndimage.label``); ``fill_holes`` and
``largest_component_2d`` add per-slice hole filling and a largest component for 2D inputs;
``tta_flip`` averages the left-right flipped prediction.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from liverfib.errors import ConfigError, InputError

__all__ = [
    "SegModelConfig",
    "SegModel",
    "build_seg_net",
    "context_stack",
    "keep_largest_component",
    "postprocess_mask",
    "input_intensity",
    "looks_like_hu",
    "normalize_intensity",
    "seg_bundle_fields",
]



class SegModelConfig(BaseModel):
    """Architecture and input geometry of a liver segmenter (saved in every checkpoint)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    arch: Literal["unet-lite0", "unet", "segresnet"] = "unet-lite0"
    spatial_dims: Literal[2, 3] = 2
    img_size: int = 192
    roi_size: tuple[int, int, int] = (32, 96, 96)
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    strides: tuple[int, ...] = (2, 2, 2, 2)
    num_res_units: int = 1
    threshold: float = 0.5
    context: Literal[0, 1] = 0  # 2D models: neighbouring slices on each side as channels (2.5D)
    ct_window: tuple[float, float] | None = None  # HU window for CT inputs; None = percentiles always
    fill_holes: bool = False  # fill holes slice by slice after thresholding
    largest_component_2d: bool = False  # keep the largest component of a 2D (single-slice) result
    tta_flip: bool = False  # average with the left-right flipped prediction (2x inference time)


def build_seg_net(cfg: SegModelConfig, *, pretrained: bool = False) -> Any:
    """A network ``(B, 1, *spatial) -> (B, 1, *spatial)`` logits.

    ``unet-lite0`` (2D only) is the smp U-Net with a tf_efficientnet_lite0 encoder from
    :mod:`liverfib.models.segmentation` (``pretrained`` loads the offline ImageNet encoder weights;
    the gray slice is repeated to 3 channels); ``unet``/``segresnet`` are MONAI nets, random init.
    """
    import torch
    from monai.networks.nets import SegResNet, UNet

    if cfg.context and (cfg.arch != "unet-lite0" or cfg.spatial_dims != 2):
        raise ConfigError(f"context (2.5D) needs the 2D unet-lite0 net, got {cfg.arch} {cfg.spatial_dims}D")
    if cfg.arch == "unet-lite0":
        if cfg.spatial_dims != 2 or cfg.img_size % 32:
            raise ConfigError(f"unet-lite0 is 2D and needs img_size divisible by 32, got {cfg.spatial_dims}D / {cfg.img_size}")
        from liverfib.models.segmentation import build_seg_model

        class _Gray(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = build_seg_model("unet-lite0", in_channels=3, pretrained=pretrained)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                # (B, 1, H, W) gray slice or (B, 3, H, W) 2.5D stack k-1, k, k+1
                return self.net((x.expand(-1, 3, -1, -1) - 0.45) / 0.25)

        return _Gray()
    if cfg.arch == "unet":
        if len(cfg.strides) != len(cfg.channels) - 1:
            raise ConfigError(f"unet needs len(strides) = len(channels) - 1, got {cfg.strides} / {cfg.channels}")
        return UNet(cfg.spatial_dims, 1, 1, channels=cfg.channels, strides=cfg.strides, num_res_units=cfg.num_res_units)
    return SegResNet(spatial_dims=cfg.spatial_dims, in_channels=1, out_channels=1, init_filters=cfg.channels[0])


class SegModel:
    """A loaded segmenter: ``predict_proba(array) -> probabilities`` of the same shape."""

    def __init__(self, net: Any, cfg: SegModelConfig, info: dict[str, Any] | None = None) -> None:
        self.net = net.eval()
        self.cfg = cfg
        self.info = info or {}

    def predict_proba(self, array: np.ndarray, *, batch_size: int = 8) -> np.ndarray:
        """Liver probability for a ``(H, W)`` slice or ``(D, H, W)`` volume (same shape, float32)."""
        import torch

        if array.ndim not in (2, 3):
            raise InputError(f"Expected a 2D slice or 3D volume, got shape {array.shape}")
        x = input_intensity(array, self.cfg.ct_window)
        with torch.inference_mode():
            if self.cfg.spatial_dims == 2:
                stacks = context_stack(x[None] if x.ndim == 2 else x, self.cfg.context)  # (D, C, H, W)
                probs = np.concatenate(
                    [self._predict_slices(stacks[i : i + 32], batch_size) for i in range(0, len(stacks), 32)]
                )
                return probs[0] if array.ndim == 2 else probs
            if array.ndim == 2:
                raise InputError("This is a 3D segmentation model; it needs a volume, got a 2D slice")
            return self._predict_volume(x)

    def _predict_slices(self, stacks: np.ndarray, batch_size: int) -> np.ndarray:
        """``(n, C, h, w)`` in [0, 1] -> ``(n, h, w)`` probabilities."""
        import torch
        import torch.nn.functional as F
        from monai.inferers import sliding_window_inference

        n, c, h, w = stacks.shape
        side = max(h, w)
        pad = np.zeros((n, c, side, side), np.float32)
        top, left = (side - h) // 2, (side - w) // 2
        pad[:, :, top : top + h, left : left + w] = stacks
        t = torch.from_numpy(pad)
        s = self.cfg.img_size
        t = F.interpolate(t, size=(s, s), mode="bilinear", align_corners=False)
        logits = sliding_window_inference(t, (s, s), batch_size, self.net, overlap=0.0)
        probs = torch.sigmoid(logits)
        if self.cfg.tta_flip:
            flipped = sliding_window_inference(t.flip(-1), (s, s), batch_size, self.net, overlap=0.0)
            probs = 0.5 * (probs + torch.sigmoid(flipped).flip(-1))
        probs = F.interpolate(probs, size=(side, side), mode="bilinear", align_corners=False)
        return probs[:, 0, top : top + h, left : left + w].numpy().astype(np.float32)

    def _predict_volume(self, vol: np.ndarray) -> np.ndarray:
        import torch
        from monai.inferers import sliding_window_inference

        t = torch.from_numpy(np.ascontiguousarray(vol, dtype=np.float32))[None, None]
        roi = tuple(min(r, s) for r, s in zip(self.cfg.roi_size, vol.shape, strict=True))
        logits = sliding_window_inference(t, roi, 2, self.net, overlap=0.25, mode="gaussian", padding_mode="replicate")
        return torch.sigmoid(logits)[0, 0].numpy().astype(np.float32)

    def segment(self, array: np.ndarray) -> np.ndarray:
        """Binary liver mask (uint8 0/1); a 3D input keeps its largest connected component."""
        mask = (self.predict_proba(array) >= self.cfg.threshold).astype(np.uint8)
        return postprocess_mask(mask, fill_holes=self.cfg.fill_holes, largest_2d=self.cfg.largest_component_2d)


def postprocess_mask(mask: np.ndarray, *, fill_holes: bool = False, largest_2d: bool = False) -> np.ndarray:
    """Largest 3D component (always for volumes; for a 2D mask only with ``largest_2d``), then holes
    filled slice by slice with ``fill_holes`` (``scipy.ndimage.binary_fill_holes``)."""
    from scipy import ndimage

    if mask.ndim == 3 or largest_2d:
        mask = keep_largest_component(mask)
    if fill_holes:
        planes = mask[None] if mask.ndim == 2 else mask
        filled = np.stack([ndimage.binary_fill_holes(p) for p in planes]).astype(np.uint8)
        mask = filled[0] if mask.ndim == 2 else filled
    return mask.astype(np.uint8)


def context_stack(slices: np.ndarray, context: int) -> np.ndarray:
    """``(D, H, W)`` -> ``(D, 2*context+1, H, W)``: each slice with its neighbours (edge slices repeat)."""
    if context == 0:
        return slices[:, None]
    d = slices.shape[0]
    idx = np.clip(np.arange(d)[:, None] + np.arange(-context, context + 1)[None], 0, d - 1)
    return slices[idx]


def looks_like_hu(array: np.ndarray) -> bool:
    """True for CT in Hounsfield units: air at about -1000 (1st percentile below -500) and tissue above 0.

    8-bit slices (0..255) and MR scanner units (non-negative, a few resampling undershoots) are False.
    """
    a = np.asarray(array)
    if a.size == 0:
        return False
    lo, hi = np.percentile(a, [1, 99])
    return bool(lo < -500 and hi > 0)


def input_intensity(array: np.ndarray, ct_window: tuple[float, float] | None = None) -> np.ndarray:
    """Network input in [0, 1] (float32): the HU window for CT in HU when ``ct_window`` is set, else
    :func:`normalize_intensity` (percentiles), which suits MR and 8-bit slices of unknown windowing."""
    if ct_window is not None and looks_like_hu(array):
        a = np.asarray(array, dtype=np.float32)
        if not np.isfinite(a).all():
            raise InputError("Image holds NaN or infinite values; clean it first")
        lo, hi = ct_window
        return np.clip((a - lo) / (hi - lo), 0.0, 1.0)
    return normalize_intensity(array)


def normalize_intensity(array: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Clip to the ``low``/``high`` percentiles of the whole array and scale to [0, 1] (float32)."""
    a = np.asarray(array, dtype=np.float32)
    if not np.isfinite(a).all():
        raise InputError("Image holds NaN or infinite values; clean it first")
    lo, hi = np.percentile(a, [low, high])
    if hi - lo < 1e-6:
        return np.zeros_like(a)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 6-connected foreground component of a binary mask.

    (MONAI's ``KeepLargestConnectedComponent`` needs scikit-image, which liverfib does not pin;
    ``scipy.ndimage.label`` does the same job.)
    """
    from scipy import ndimage

    labels, n = ndimage.label(mask > 0)
    if n <= 1:
        return (mask > 0).astype(np.uint8)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return (labels == int(sizes.argmax())).astype(np.uint8)


def seg_bundle_fields(cfg: SegModelConfig, *, synthetic: bool = False, **info: Any) -> dict[str, Any]:
    """``save_bundle`` keyword arguments of an ``mri-seg`` model; ``info`` (``trained_on``, ``heldout``,
    ``command``, ...) is kept under ``extra.info`` and returned by
    :func:`liverfib.pipeline._mri_common.liver_segmenter` as ``SegModel.info``."""
    model = cfg.model_dump(mode="json")
    heldout = info.get("heldout")
    return {
        "task": "mri-seg" if cfg.spatial_dims == 2 else "mri-seg-3d",
        "network": {"name": cfg.arch, "args": model},
        "classes": ["background", "liver"],
        "preprocessing": {"img_size": cfg.img_size, "threshold": cfg.threshold},
        "input": {"size": [cfg.img_size, cfg.img_size] if cfg.spatial_dims == 2 else list(cfg.roi_size),
                  "channels": 2 * cfg.context + 1},
        "metrics": {"split": "heldout", "values": heldout} if heldout else {},
        "training_data": {"description": info.get("trained_on")},
        "synthetic": synthetic,
        "extra": {"info": info},
    }
