"""Liver segmentation of an MRE exam: network input, inference, post-processing.

The network sees one channel per slice, ``(D, 1, H, W)`` float32: the magnitude image divided by
its exam-wide 99th percentile (clipped to [0, 1.5]). It does not see the confidence map: on the
phantoms that map is low along every tissue boundary, so a thresholded confidence input outlines
the true liver and lets the net copy the answer instead of finding the liver (the leak found in
issue 16). Magnitude alone serves Siemens-, GE- and NIfTI-style exams alike. Slices are resized to the model's ``img_size`` (bilinear), the logits resized back, thresholded at 0 and
per slice only connected components of at least 20 % of the largest are kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from liverfib.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["INPUT_CHANNELS", "prepare_input", "segment_liver", "postprocess_mask"]

#: Channels of the network input (magnitude only).
INPUT_CHANNELS = 1


def prepare_input(magnitude: np.ndarray | None) -> np.ndarray:
    """Network input ``(D, 1, H, W)`` float32 from the magnitude ``(D, H, W)``."""
    if magnitude is None:
        raise InputError("automatic liver segmentation needs the magnitude series, which this exam lacks; "
                         "pass a liver mask with --mask")
    mag = np.asarray(magnitude, np.float32)
    scale = float(np.percentile(mag, 99)) or 1.0
    return np.clip(mag / scale, 0, 1.5)[:, None]


def postprocess_mask(mask: np.ndarray, keep_fraction: float = 0.2) -> np.ndarray:
    """Per slice keep connected components >= ``keep_fraction`` of the largest (holes = vessels stay)."""
    from scipy.ndimage import label

    out = np.zeros_like(mask, dtype=bool)
    for k, m in enumerate(mask):
        comps, n = label(m)
        if n == 0:
            continue
        sizes = np.bincount(comps.ravel())[1:]
        keep = np.nonzero(sizes >= keep_fraction * sizes.max())[0] + 1
        out[k] = np.isin(comps, keep)
    return out


def segment_liver(net: torch.nn.Module, info: dict[str, Any], inputs: np.ndarray,
                  batch_size: int = 8) -> np.ndarray:
    """Liver mask ``(D, H, W)`` bool from network input ``(D, C, H, W)``."""
    import torch
    import torch.nn.functional as F

    from liverfib.errors import ModelError

    size = int(info["img_size"])
    d, c, h, w = inputs.shape
    if int(info.get("in_channels", c)) != c:
        raise ModelError(f"{info.get('path', 'model')}: trained on {info['in_channels']} input channels, the MRE "
                         f"input now has {c} (magnitude only); retrain it with 'liverfib train-seg --task mre'")
    out = []
    with torch.inference_mode():
        for i in range(0, d, batch_size):
            x = torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch_size]))
            if (h, w) != (size, size):
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            logits = net(x)
            if (h, w) != (size, size):
                logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            out.append(logits[:, 0].numpy() > 0)
    return postprocess_mask(np.concatenate(out))
