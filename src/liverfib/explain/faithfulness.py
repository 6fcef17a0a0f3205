"""Faithfulness of CAMs: ROAD (Rong et al. 2022) from pytorch-grad-cam, against a random-map baseline.

``ROADCombined`` removes the most / least relevant pixels (by percentile) with noisy linear
imputation and measures the change in the target's confidence; higher is more faithful. The same
score for smooth random maps is the floor a CAM must clear to be informative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["random_maps", "road_scores"]

PERCENTILES = (20, 40, 60, 80)


def random_maps(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``(n, size, size)`` smooth random maps in [0, 1] (blurred uniform noise, CAM-like blobs)."""
    import cv2

    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size), np.float32)
    for i in range(n):
        m = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), sigmaX=size / 12)
        out[i] = (m - m.min()) / max(float(m.max() - m.min()), 1e-6)
    return out


def road_scores(predictor: Any, arrays: Sequence[np.ndarray], cams: Sequence[Any], seed: int = 0) -> dict[str, np.ndarray]:
    """Per-image ROAD-combined scores of the CAMs and of random maps, and their difference."""
    import torch
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    net = predictor.net.to(memory_format=torch.contiguous_format)
    classes = list(predictor.classes)
    metric = ROADCombined(percentiles=list(PERCENTILES))
    cam_scores, rand_scores = [], []
    for start in range(0, len(arrays), 8):
        chunk = list(arrays[start : start + 8])
        part = list(cams[start : start + 8])
        x = torch.from_numpy(np.stack([predictor.preprocess(a) for a in chunk]))
        targets = [ClassifierOutputSoftmaxTarget(classes.index(c.target)) for c in part]
        maps = np.stack([c.input_heatmap for c in part]).astype(np.float32)
        with torch.no_grad():
            cam_scores.append(np.asarray(metric(x, maps, targets, net), float).reshape(-1))
            rand = random_maps(len(chunk), maps.shape[-1], seed + start)
            rand_scores.append(np.asarray(metric(x, rand, targets, net), float).reshape(-1))
    predictor.net.to(memory_format=torch.channels_last)
    c, r = np.concatenate(cam_scores), np.concatenate(rand_scores)
    return {"road_cam": c, "road_random": r, "road_gain": c - r}
