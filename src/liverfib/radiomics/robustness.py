"""Feature robustness: keep features whose values agree across small ROI and intensity perturbations.

Each image is re-extracted under perturbations (mask eroded and dilated by ``radius_px``, Gaussian
noise of ``noise_fraction`` x the ROI's standard deviation); the perturbed versions are "raters" and
the agreement is the intraclass correlation ICC(2,1) (two-way random effects, absolute agreement,
single measurement; Shrout & Fleiss 1979, McGraw & Wong's ICC(A,1)). Features with ICC below a
threshold (0.75 = "good" reliability, Koo & Li 2016) are dropped. No library in the lock file
computes ICC (pingouin is not installed): :func:`liverfib.evaluation.agreement.icc` is vectorised over features.
The filter uses no labels, so running it on all images leaks nothing into the evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from liverfib.errors import ConfigError, InputError
from liverfib.image import Image
from liverfib.radiomics.config import RadiomicsConfig

__all__ = ["PERTURBATIONS", "perturb", "feature_robustness", "robust_features"]

#: Perturbations applied to every image (the "raters").
PERTURBATIONS = ("original", "erode", "dilate", "noise")


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


def feature_robustness(
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
    from liverfib.evaluation.agreement import icc

    values = icc(np.asarray(cube), form="2,1", level=None)["icc"]
    return {n: float(v) for n, v in zip(names, values, strict=True)}


def robust_features(icc: dict[str, float], threshold: float = 0.75) -> list[str]:
    """Names with ICC >= ``threshold``, in the given order."""
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"ICC threshold must lie in [0, 1], got {threshold}")
    return [n for n, v in icc.items() if v >= threshold]
