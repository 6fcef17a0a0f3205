"""Liver stiffness from an elastogram: valid ROI, per-slice statistics, exam value, stage.

ROI per slice = liver mask ∩ confidence >= ``confidence_min_pct`` (95 %) ∩ not vessel, with the
liver eroded by ``edge_margin_mm`` (liver edges and the fissure excluded). Vessels come from a
vessel mask when one is known (phantom truth), else from the magnitude image: pixels inside the
liver whose magnitude lies more than ``vessel_robust_z`` robust SDs from the liver median
(flowing blood is dark on GRE MRE magnitude), dilated by one pixel.

The exam value is the area-weighted mean of the per-slice ROI means, as the QIBA MRE profile
(QIBA Profile: Magnetic Resonance Elastography of the Liver, 2022) specifies, which equals the
mean over all ROI pixels of the exam.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from liverfib.errors import InputError
from liverfib.mre.stages import DEFAULT_CUTOFFS, StageCutoffs, stage_from_kpa

__all__ = ["QuantifyConfig", "DEFAULT_QUANTIFY", "valid_roi", "measure_roi", "quantify_stiffness"]


class QuantifyConfig(BaseModel):
    """Rules of the stiffness ROI."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    confidence_min_pct: float = Field(95.0, ge=0, le=100)
    edge_margin_mm: float = Field(4.0, ge=0)
    vessel_robust_z: float | None = Field(3.0, gt=0)
    min_slice_area_mm2: float = Field(0.0, ge=0)


DEFAULT_QUANTIFY = QuantifyConfig()


def _vessels_from_magnitude(liver: np.ndarray, magnitude: np.ndarray, z: float) -> np.ndarray:
    from scipy.ndimage import binary_dilation

    out = np.zeros_like(liver, dtype=bool)
    for k in range(liver.shape[0]):
        vals = magnitude[k][liver[k]]
        if vals.size < 20:
            continue
        med = np.median(vals)
        mad = 1.4826 * np.median(np.abs(vals - med)) + 1e-6
        out[k] = binary_dilation(liver[k] & (np.abs(magnitude[k] - med) > z * mad))
    return out


def valid_roi(
    liver: np.ndarray,
    confidence_pct: np.ndarray,
    pixel_spacing_mm: tuple[float, float],
    config: QuantifyConfig = DEFAULT_QUANTIFY,
    *,
    vessels: np.ndarray | None = None,
    magnitude: np.ndarray | None = None,
) -> np.ndarray:
    """The measurement ROI ``(D, H, W)`` bool (see module docstring)."""
    from scipy.ndimage import binary_erosion

    liver = np.asarray(liver, bool)
    if liver.shape != confidence_pct.shape:
        raise InputError(f"liver mask {liver.shape} and confidence map {confidence_pct.shape} differ in shape")
    radius = config.edge_margin_mm / min(pixel_spacing_mm)
    r = int(round(radius))
    if r > 0:
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        disk = yy**2 + xx**2 <= radius**2 + 1e-6
        inner = np.stack([binary_erosion(m, disk, border_value=0) for m in liver])
    else:
        inner = liver.copy()
    roi = inner & (confidence_pct >= config.confidence_min_pct)
    if vessels is not None:
        roi &= ~np.asarray(vessels, bool)
    elif magnitude is not None and config.vessel_robust_z is not None:
        roi &= ~_vessels_from_magnitude(liver, magnitude, config.vessel_robust_z)
    return roi


def measure_roi(
    stiffness_kpa: np.ndarray, roi: np.ndarray, pixel_spacing_mm: tuple[float, float],
    min_slice_area_mm2: float = 0.0,
) -> dict[str, Any]:
    """Per-slice mean/median/IQR (kPa) and area (mm²), and the area-weighted exam mean.

    Slices are numbered from 1 (``slice``), in the order of the input's first axis.

    Returns ``{"mean_stiffness_kpa", "roi_area_mm2", "slices": [...]}``; the exam mean is ``None``
    when the ROI is empty. Slices whose ROI is smaller than ``min_slice_area_mm2`` are listed with
    ``used: False`` and do not count.
    """
    px_mm2 = float(pixel_spacing_mm[0] * pixel_spacing_mm[1])
    slices = []
    total_area = 0.0
    weighted = 0.0
    for k in range(stiffness_kpa.shape[0]):
        vals = stiffness_kpa[k][roi[k]].astype(np.float64)
        area = round(vals.size * px_mm2, 4)
        entry: dict[str, Any] = {"slice": k + 1, "area_mm2": area, "n_pixels": int(vals.size)}
        if vals.size:
            q1, med, q3 = np.percentile(vals, [25, 50, 75])
            entry.update(mean_kpa=float(vals.mean()), median_kpa=float(med), q1_kpa=float(q1),
                         q3_kpa=float(q3), iqr_kpa=float(q3 - q1))
        else:
            entry.update(mean_kpa=None, median_kpa=None, q1_kpa=None, q3_kpa=None, iqr_kpa=None)
        entry["used"] = bool(vals.size) and area >= min_slice_area_mm2
        if entry["used"]:
            total_area += area
            weighted += entry["mean_kpa"] * area
        slices.append(entry)
    mean = weighted / total_area if total_area > 0 else None
    return {"mean_stiffness_kpa": mean, "roi_area_mm2": round(total_area, 4), "slices": slices}


def quantify_stiffness(
    stiffness_kpa: np.ndarray,
    liver: np.ndarray,
    confidence_pct: np.ndarray,
    pixel_spacing_mm: tuple[float, float],
    *,
    magnitude: np.ndarray | None = None,
    config: QuantifyConfig = DEFAULT_QUANTIFY,
    cutoffs: StageCutoffs = DEFAULT_CUTOFFS,
) -> tuple[dict[str, Any], np.ndarray]:
    """Measure one exam; returns (summary with ``mean_stiffness_kpa``/``stage``/``slices``/``roi_area_mm2``, ROI).

    Raises:
        InputError: the ROI is empty on every slice (no liver found, or all of it below the
            confidence limit).
    """
    roi = valid_roi(liver, confidence_pct, pixel_spacing_mm, config, magnitude=magnitude)
    m = measure_roi(stiffness_kpa, roi, pixel_spacing_mm, config.min_slice_area_mm2)
    if m["mean_stiffness_kpa"] is None:
        raise InputError(
            f"no valid liver ROI: liver mask {int(np.asarray(liver).sum())} px, of which none is >= "
            f"{config.confidence_min_pct:g} % confidence and {config.edge_margin_mm:g} mm from the edge; "
            "check the segmentation (--mask) or lower --confidence"
        )
    m["stage"] = stage_from_kpa(m["mean_stiffness_kpa"], cutoffs)
    m["cutoffs_kpa"] = dict(zip(("F1", "F2", "F3", "F4"), cutoffs.bounds(), strict=True))
    m["cutoffs_source"] = cutoffs.source
    return m, roi
