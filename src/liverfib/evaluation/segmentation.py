"""Overlap metrics for binary masks, summarised with cluster-bootstrap confidence intervals.

Dice and IoU come from MONAI's metric functions; an empty prediction of an empty truth counts as a
perfect 1.0 (MONAI's ``ignore_empty=False`` convention).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from liverfib.errors import InputError
from liverfib.evaluation.resampling import bootstrap

__all__ = ["overlap_scores", "dice_hd95", "summarise_overlap"]


def overlap_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice and IoU of two same-shape 2D/3D bool masks."""
    import torch
    from monai.metrics import compute_dice, compute_iou

    if pred.shape != truth.shape:
        raise InputError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    p = torch.from_numpy(np.asarray(pred, bool)[None, None].astype(np.float32))
    t = torch.from_numpy(np.asarray(truth, bool)[None, None].astype(np.float32))
    dice = float(compute_dice(p, t, include_background=True, ignore_empty=False)[0, 0])
    iou = float(compute_iou(p, t, include_background=True, ignore_empty=False)[0, 0])
    return {"dice": dice, "iou": iou}


def dice_hd95(pred: np.ndarray, truth: np.ndarray, spacing: tuple[float, ...] | None = None) -> tuple[float | None, float | None]:
    """Dice and 95th-percentile Hausdorff distance (mm with ``spacing``, else pixels) via monai.metrics.

    Returns ``(None, None)`` when the truth is empty (Dice undefined); HD95 is ``None`` when the
    prediction is empty.
    """
    import torch
    from monai.metrics import compute_dice, compute_hausdorff_distance

    if pred.shape != truth.shape:
        raise InputError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    if not truth.any():
        return None, None
    p = torch.from_numpy((pred > 0).astype(np.float32))[None, None]
    t = torch.from_numpy((truth > 0).astype(np.float32))[None, None]
    dice = float(compute_dice(p, t, include_background=True)[0, 0])
    if not pred.any():
        return dice, None
    sp = None if spacing is None else [float(s) for s in spacing]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # MONAI 1.6 deprecation inside get_mask_edges
        hd = float(compute_hausdorff_distance(p, t, include_background=True, percentile=95, spacing=sp)[0, 0])
    return dice, hd


def summarise_overlap(
    scores: Sequence[dict[str, float]], groups: Sequence[str] | None = None
) -> dict[str, Any]:
    """Per-metric mean, median and 95 % CI over images (groups resampled together)."""
    out: dict[str, Any] = {"n": len(scores)}
    for key in ("dice", "iou"):
        vals = [s[key] for s in scores]
        ci = bootstrap(vals, groups)
        out[key] = {"mean": round(float(np.mean(vals)), 4), "ci95": [round(ci.low, 4), round(ci.high, 4)],
                    "median": round(float(np.median(vals)), 4)}
    return out
