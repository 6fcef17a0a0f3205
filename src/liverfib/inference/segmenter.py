"""2D liver segmentation at inference: a loaded model bundle with its preprocessing.

``load_segmenter("default")`` loads the shipped ultrasound liver segmenter
(``assets/us_liver_seg_default/``); any other value is a bundle from ``liverfib train-seg``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import ModelError
from liverfib.image import Image
from liverfib.models.assets import default_bundle_path
from liverfib.models.bundle import Bundle

__all__ = ["DEFAULT_SEG_MODEL_PATH", "SEG_2D_TASKS", "Segmenter", "load_segmenter", "build_seg_from_bundle"]

DEFAULT_SEG_MODEL_PATH = default_bundle_path("us-liver-seg")
#: bundle tasks this segmenter runs (2D ultrasound liver masks and CAM pseudo-masks)
SEG_2D_TASKS = ("us-liver-seg", "us-cam-seg")


def build_seg_from_bundle(bundle: Bundle) -> Any:
    """Instantiate the network a 2D segmentation bundle describes and load its weights (eval mode)."""
    from liverfib.models.segmentation import build_seg_model

    args = bundle.network["args"]
    net = build_seg_model(args["arch"], in_channels=int(args.get("in_channels", 3)), pretrained=False)
    return bundle.load_into(net, args["arch"])


class Segmenter:
    """Binary segmentation of 2D gray images: ``predict(image) -> bool (H, W)`` at the input's size."""

    def __init__(self, bundle: Bundle, source: str) -> None:
        import torch

        from liverfib.preprocess.segmentation import SegPreprocess, SegPreprocessConfig

        if not bundle.preprocessing:
            raise ModelError(f"{source}: not a segmentation model (its bundle lacks preprocessing)")
        self.bundle, self.source = bundle, source
        extra = bundle.extra
        # channels_last: ~1.5x faster depthwise convolutions on CPU (measured, BENCHMARKS.md)
        self.net = build_seg_from_bundle(bundle).to(memory_format=torch.channels_last)
        self.preprocess = SegPreprocess(SegPreprocessConfig(**bundle.preprocessing))
        self.threshold = float(extra.get("threshold", 0.5))
        self.target = str(extra.get("target", "liver"))
        #: average with the horizontally flipped image (the probe of a mirrored scan plane)
        self.tta = bool(extra.get("tta", False))  # measured: no gain on LOSO fold b (BENCHMARKS)
        self._torch = torch

    def describe(self) -> dict[str, Any]:
        return {"name": self.source, **self.bundle.network["args"], "target": self.target,
                "preprocess": self.bundle.preprocessing, "threshold": self.threshold, "tta": self.tta,
                "synthetic": self.bundle.synthetic}

    def predict_proba(self, arrays: Sequence[np.ndarray], *, batch_size: int = 8) -> list[np.ndarray]:
        """Gray ``(H, W)`` arrays -> foreground probability maps at each input's size."""
        from liverfib.preprocess.segmentation import resize_probability

        torch = self._torch
        out: list[np.ndarray] = []
        for start in range(0, len(arrays), batch_size):
            chunk = arrays[start : start + batch_size]
            for a in chunk:
                if np.asarray(a).ndim != 2:
                    raise ModelError(f"2D segmentation needs (H, W) images, got shape {np.shape(a)}")
            x = torch.from_numpy(np.stack([self.preprocess(a) for a in chunk]))
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                p = torch.sigmoid(self.net(x))
                if self.tta:
                    p = 0.5 * (p + torch.sigmoid(self.net(x.flip(-1))).flip(-1))
                p = p[:, 0].numpy()
            out.extend(resize_probability(pi, np.shape(a)) for pi, a in zip(p, chunk, strict=True))
        return out

    def masks_from_proba(self, probs: Sequence[np.ndarray]) -> list[np.ndarray]:
        from liverfib.inference.postprocess import largest_component

        return [largest_component(p >= self.threshold) for p in probs]

    def predict_arrays(self, arrays: Sequence[np.ndarray], *, batch_size: int = 8) -> list[np.ndarray]:
        return self.masks_from_proba(self.predict_proba(arrays, batch_size=batch_size))

    def predict(self, image: Image | np.ndarray) -> np.ndarray:
        """One image -> bool mask ``(H, W)`` (largest component of the thresholded probability)."""
        array = image.array if isinstance(image, Image) else image
        return self.predict_arrays([array])[0]


def load_segmenter(model: str | Path = "default") -> Segmenter:
    """``"default"`` loads the shipped ultrasound liver segmenter; anything else is a model bundle."""
    from liverfib.models.bundle import load_bundle

    if str(model) == "default":
        if not DEFAULT_SEG_MODEL_PATH.exists():
            raise ModelError(f"the shipped liver segmenter is missing ({DEFAULT_SEG_MODEL_PATH}); reinstall liverfib")
        return Segmenter(load_bundle(DEFAULT_SEG_MODEL_PATH, task=SEG_2D_TASKS), "default")
    return Segmenter(load_bundle(model, task=SEG_2D_TASKS), str(model))
