"""2D liver segmentation at inference: a loaded checkpoint with its preprocessing.

``load_segmenter("default")`` loads the shipped ultrasound liver segmenter
(``assets/us_liver_seg_default.pt``); any other value is a checkpoint from ``liverfib train-seg``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import ModelError
from liverfib.image import Image

__all__ = ["DEFAULT_SEG_MODEL_PATH", "Segmenter", "load_segmenter", "build_seg_from_payload"]

DEFAULT_SEG_MODEL_PATH = Path(__file__).resolve().parent.parent / "assets" / "us_liver_seg_default.pt"


def build_seg_from_payload(payload: dict[str, Any]) -> Any:
    """Instantiate the network a segmentation checkpoint describes and load its weights (eval mode)."""
    from liverfib.models.checkpoint import load_state
    from liverfib.models.segmentation import build_seg_model

    cfg = payload["model"]
    net = build_seg_model(cfg["arch"], in_channels=int(cfg.get("in_channels", 3)), pretrained=False)
    return load_state(net, payload, cfg["arch"])


class Segmenter:
    """Binary segmentation of 2D gray images: ``predict(image) -> bool (H, W)`` at the input's size."""

    def __init__(self, payload: dict[str, Any], source: str) -> None:
        import torch

        from liverfib.preprocess.segmentation import SegPreprocess, SegPreprocessConfig

        if "preprocess" not in payload:
            raise ModelError(f"{source}: not a segmentation checkpoint (lacks preprocess)")
        self.payload, self.source = payload, source
        # channels_last: ~1.5x faster depthwise convolutions on CPU (measured, BENCHMARKS.md)
        self.net = build_seg_from_payload(payload).to(memory_format=torch.channels_last)
        self.preprocess = SegPreprocess(SegPreprocessConfig(**payload["preprocess"]))
        self.threshold = float(payload.get("threshold", 0.5))
        self.target = str(payload.get("target", "liver"))
        #: average with the horizontally flipped image (the probe of a mirrored scan plane)
        self.tta = bool(payload.get("tta", False))  # measured: no gain on LOSO fold b (BENCHMARKS)
        self._torch = torch

    def describe(self) -> dict[str, Any]:
        return {"name": self.source, **self.payload["model"], "target": self.target,
                "preprocess": self.payload["preprocess"], "threshold": self.threshold, "tta": self.tta}

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
    """``"default"`` loads the shipped ultrasound liver segmenter; anything else is a checkpoint path."""
    from liverfib.models.checkpoint import SEG_CHECKPOINT_FORMAT, load_checkpoint

    if str(model) == "default":
        if not DEFAULT_SEG_MODEL_PATH.is_file():
            raise ModelError(f"the shipped liver segmenter is missing ({DEFAULT_SEG_MODEL_PATH}); reinstall liverfib")
        return Segmenter(load_checkpoint(DEFAULT_SEG_MODEL_PATH, fmt=SEG_CHECKPOINT_FORMAT), "default")
    return Segmenter(load_checkpoint(model, fmt=SEG_CHECKPOINT_FORMAT), str(model))
