"""One simulated MRE exam: the stage-specific stiffness ranges and :func:`simulate_exam`, which draws
anatomy, signals and the simulated reader's ROI in a fixed order (deterministic for a seed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liverfib.errors import ConfigError
from liverfib.mre.phantom.anatomy import FISSURE, LIVER, SUBSLICE_MM, VESSEL, draw_anatomy
from liverfib.mre.phantom.roi import draw_manual_roi
from liverfib.mre.phantom.signals import (
    draw_confidence,
    draw_elastogram,
    draw_magnitude,
    draw_true_stiffness,
    draw_waves,
)
from liverfib.mre.stages import STAGES

VENDORS = ("siemens", "ge")
VARIANTS = ("standard", "independent")

#: True base liver stiffness per intended stage (kPa), after the interpretation table of Venkatesh, Yin &
#: Ehman, JMRI 2013;37:544-555, kept a little inside the cut-offs of :data:`liverfib.mre.stages.DEFAULT_CUTOFFS`.
STAGE_KPA_RANGES: dict[str, tuple[float, float]] = {
    "F0": (1.9, 2.4),
    "F1": (2.56, 2.74),
    "F2": (2.9, 3.9),
    "F3": (4.1, 4.9),
    "F4": (5.1, 7.5),
}


@dataclass(frozen=True)
class PhantomSlices:
    """One simulated exam as arrays ``(D, H, W)`` plus its scalar truth.

    ``labels`` uint8 tissue map, ``true_kpa`` noise-free stiffness, ``elastogram_kpa`` what the
    scanner shows, ``confidence_pct`` 0-100, ``magnitude`` 0..~1, ``waves`` ``(4, D, H, W)``,
    ``manual_roi`` bool ``(D, H, W)`` (the simulated reader's ROI).
    """

    labels: np.ndarray
    true_kpa: np.ndarray
    elastogram_kpa: np.ndarray
    confidence_pct: np.ndarray
    magnitude: np.ndarray
    waves: np.ndarray
    manual_roi: np.ndarray
    intended_stage: str
    base_kpa: float
    vendor: str
    variant: str = "standard"
    liver_fraction: np.ndarray | None = None  # (D, H, W) share of the slab's sub-slices that are liver

    @property
    def liver(self) -> np.ndarray:
        return self.labels == LIVER

    @property
    def vessels(self) -> np.ndarray:
        return np.isin(self.labels, (VESSEL, FISSURE))


def simulate_exam(seed: int | tuple[int, ...], stage: str, vendor: str = "siemens",
                  n_slices: int | None = None, variant: str = "standard") -> PhantomSlices:
    """Simulate one exam; deterministic for a given ``seed`` (and ``variant``)."""
    if stage not in STAGES:
        raise ConfigError(f"Unknown stage '{stage}'. Valid choices: {', '.join(STAGES)}")
    if vendor not in VENDORS:
        raise ConfigError(f"Unknown vendor '{vendor}'. Valid choices: {', '.join(VENDORS)}")
    if variant not in VARIANTS:
        raise ConfigError(f"Unknown phantom variant '{variant}'. Valid choices: {', '.join(VARIANTS)}")
    rng = np.random.default_rng(seed)
    if n_slices is None:
        n_slices = 5 if rng.random() < 0.6 else 4
    lo, hi = STAGE_KPA_RANGES[stage]
    base = float(rng.uniform(lo, hi))
    sub_labels = draw_anatomy(rng, n_slices, variant)
    labels = sub_labels[len(SUBSLICE_MM) // 2]
    conf = draw_confidence(labels, rng)
    sub_kpa = draw_true_stiffness(sub_labels, base, stage, rng)
    true_kpa = sub_kpa[len(SUBSLICE_MM) // 2]
    elasto = draw_elastogram(sub_kpa.mean(axis=0), conf, rng, variant)
    mag = draw_magnitude(sub_labels, rng, variant)
    waves = draw_waves(true_kpa, labels, rng)
    manual = draw_manual_roi(labels, conf, rng)
    fraction = (sub_labels == LIVER).mean(axis=0).astype(np.float32)
    return PhantomSlices(labels, true_kpa, elasto, conf, mag, waves, manual, stage, base, vendor, variant, fraction)
