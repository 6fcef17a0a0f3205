"""Feature robustness: keep features whose values agree across small ROI and intensity perturbations.

Each image is re-extracted under perturbations (mask eroded and dilated by ``radius_px``, Gaussian
noise of ``noise_fraction`` x the ROI's standard deviation); the perturbed versions are "raters" and
the agreement is the intraclass correlation ICC(2,1) (two-way random effects, absolute agreement,
single measurement; Shrout & Fleiss 1979, McGraw & Wong's ICC(A,1)). Features with ICC below a
threshold (0.75 = "good" reliability, Koo & Li 2016) are dropped. No library in the lock file
computes ICC (pingouin is not installed), so it is written out here, vectorised over features.
The filter uses no labels, so running it on all images leaks nothing into the evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from liverfib.errors import ConfigError, InputError
from liverfib.image import Image
from liverfib.radiomics.config import RadiomicsConfig

__all__ = ["PERTURBATIONS", "icc_2_1", "perturb", "robustness_icc", "robust_features"]

#: Perturbations applied to every image (the "raters").
PERTURBATIONS = ("original", "erode", "dilate", "noise")


def icc_2_1(values: np.ndarray) -> np.ndarray:
    """ICC(2,1) of ``values`` shaped ``(n_subjects, k_raters)`` or ``(n, k, F)`` -> scalar or ``(F,)``.

    A feature constant over all subjects and raters has no between-subject variance: its ICC is 0
    (useless for telling images apart), not NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 2:
        raise InputError(f"ICC needs (n_subjects >= 2, k_raters >= 2[, F]) values, got shape {x.shape}")
    n, k, _ = x.shape
    grand = x.mean(axis=(0, 1))
    row = x.mean(axis=1)
    col = x.mean(axis=0)
    msr = k * ((row - grand) ** 2).sum(axis=0) / (n - 1)
    msc = n * ((col - grand) ** 2).sum(axis=0) / (k - 1)
    resid = x - row[:, None, :] - col[None, :, :] + grand
    mse = (resid**2).sum(axis=(0, 1)) / ((n - 1) * (k - 1))
    denom = msr + (k - 1) * mse + k * (msc - mse) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        icc = np.where(denom > 0, (msr - mse) / denom, 0.0)
    return float(icc[0]) if squeeze else icc


def perturb(
    image: Image,
    mask: np.ndarray,
    kind: str,
    *,
    radius_px: int = 2,
    noise_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[Image, np.ndarray]:
    """One perturbed ``(image, mask)`` pair; ``kind`` in :data:`PERTURBATIONS`."""
    from scipy import ndimage

    mask = np.asarray(mask) > 0
    if kind == "original":
        return image, mask
    if kind in ("erode", "dilate"):
        op = ndimage.binary_erosion if kind == "erode" else ndimage.binary_dilation
        return image, op(mask, iterations=radius_px)
    if kind == "noise":
        rng = np.random.default_rng(seed)
        arr = image.array.astype(np.float32)
        sigma = noise_fraction * float(arr[mask].std())
        return image.with_array(arr + rng.normal(0.0, sigma, arr.shape).astype(np.float32)), mask
    raise ConfigError(f"Unknown perturbation '{kind}'. Valid choices: {', '.join(PERTURBATIONS)}")


def robustness_icc(
    pairs: Sequence[tuple[Image, np.ndarray]],
    config: RadiomicsConfig,
    *,
    radius_px: int = 2,
    noise_fraction: float = 0.1,
    seed: int = 0,
) -> dict[str, float]:
    """ICC(2,1) per feature over ``pairs`` of (image, mask) under :data:`PERTURBATIONS`."""
    from liverfib.radiomics.extract import extract_features

    if len(pairs) < 2:
        raise InputError(f"robustness needs at least 2 images, got {len(pairs)}")
    names: list[str] | None = None
    cube = []
    for i, (image, mask) in enumerate(pairs):
        raters = []
        for kind in PERTURBATIONS:
            img, m = perturb(
                image, mask, kind, radius_px=radius_px, noise_fraction=noise_fraction, seed=seed + i
            )
            feats = extract_features(img, m, config)
            names = names or list(feats)
            raters.append([feats[n] for n in names])
        cube.append(raters)
    assert names is not None  # len(pairs) >= 2
    icc = icc_2_1(np.asarray(cube))
    return {n: float(v) for n, v in zip(names, icc, strict=True)}


def robust_features(icc: dict[str, float], threshold: float = 0.75) -> list[str]:
    """Names with ICC >= ``threshold``, in the given order."""
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"ICC threshold must lie in [0, 1], got {threshold}")
    return [n for n, v in icc.items() if v >= threshold]
