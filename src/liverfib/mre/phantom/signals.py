"""Phantom signals from the label maps: the true stiffness field, the confidence map, the elastogram
a scanner shows, the GRE-like magnitude and the shear-wave images."""

from __future__ import annotations

import numpy as np

from liverfib.mre.phantom.anatomy import (
    AIR,
    BONE,
    FAT,
    FISSURE,
    LIVER,
    MUSCLE,
    PIXEL_MM,
    SIZE,
    SPLEEN,
    VESSEL,
    grid,
)

FREQUENCY_HZ = 60.0

#: Heterogeneity (relative SD of the smooth liver stiffness field) per intended stage.
_HETEROGENEITY = {"F0": 0.04, "F1": 0.05, "F2": 0.07, "F3": 0.09, "F4": 0.12}

_MAG = {AIR: 0.0, FAT: 0.85, MUSCLE: 0.30, SPLEEN: 0.55, VESSEL: 0.10, BONE: 0.12, FISSURE: 0.80}
_KPA = {AIR: 0.0, FAT: 1.6, MUSCLE: 2.7, VESSEL: 0.8, BONE: 9.0, FISSURE: 1.6}


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean, unit-SD Gaussian random field smoothed with ``sigma`` pixels."""
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.normal(size=shape), sigma)
    return (f - f.mean()) / (f.std() + 1e-8)


def draw_confidence(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Confidence (%) ``(D, H, W)`` float32: low near boundaries, vessels, fissure, depth, nulls."""
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    out = np.zeros(labels.shape, np.float32)
    yy, xx = grid()
    for z, lab in enumerate(labels):
        edges = np.zeros_like(lab, dtype=bool)
        edges[:-1] |= lab[:-1] != lab[1:]
        edges[:, :-1] |= lab[:, :-1] != lab[:, 1:]
        d_edge = distance_transform_edt(~edges)
        d_vessel = distance_transform_edt(~np.isin(lab, (VESSEL, FISSURE)))
        body = lab != AIR
        depth = distance_transform_edt(body)
        d_driver = np.hypot(yy - 0.25 * SIZE, xx - 0.30 * SIZE)  # driver on the anterior right wall
        pen = 28 * np.exp(-d_edge / 2.2) + 32 * np.exp(-d_vessel / 2.0)
        pen += 7 * (d_driver / d_driver[body].max()) ** 2
        pen += 10 * np.exp(-depth / 3.0)
        for _ in range(int(rng.integers(0, 4))):  # wave-null patches
            cy, cx = rng.uniform(0.3, 0.7) * SIZE, rng.uniform(0.15, 0.55) * SIZE
            pen += rng.uniform(8, 25) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(5, 11) ** 2))
        conf = 99.6 - pen + gaussian_filter(rng.normal(0, 1.6, lab.shape), 1.0)
        conf[~body] = 0.0
        out[z] = np.clip(conf, 0, 100)
    return out


def draw_true_stiffness(labels: np.ndarray, base_kpa: float, stage: str, rng: np.random.Generator) -> np.ndarray:
    """Noise-free stiffness (kPa) of every sub-slice ``(S, D, H, W)``; one liver field per exam."""
    het = _HETEROGENEITY[stage]
    shape = labels.shape[1:]
    # fine heterogeneity + regional (lobe-scale) variation + a left-right gradient: where a reader
    # places the ROI matters, as in real livers
    xx = np.broadcast_to(np.arange(shape[2], dtype=np.float32) / shape[2] - 0.4, shape)
    regional = 0.6 * _smooth_field(rng, shape, sigma=6.0) + 0.9 * _smooth_field(rng, shape, sigma=22.0)
    liver_field = base_kpa * (1 + het * regional + rng.normal(0, het) * 1.5 * xx)
    if stage == "F4":  # nodular texture in cirrhosis
        liver_field *= 1 + 0.04 * _smooth_field(rng, shape, sigma=1.5)
    muscle = 1 + 0.05 * _smooth_field(rng, shape, 4.0)
    spleen_kpa = 3.2 + 0.9 * base_kpa
    field = np.zeros(labels.shape, np.float32)
    for s, lab in enumerate(labels):
        f = field[s]
        for k, kpa in _KPA.items():
            f[lab == k] = kpa
        f[lab == MUSCLE] *= muscle[lab == MUSCLE]
        f[lab == LIVER] = liver_field[lab == LIVER]
        f[lab == SPLEEN] = spleen_kpa
    return np.clip(field, 0, None).astype(np.float32)


def draw_elastogram(true_kpa_slab: np.ndarray, conf: np.ndarray, rng: np.random.Generator, variant: str) -> np.ndarray:
    """What the inversion shows: slab-averaged truth blurred, inversion noise, artefacts at low confidence."""
    from scipy.ndimage import gaussian_filter

    noise_sd, art_amp = (0.05, 2.4) if variant == "independent" else (0.03, 1.8)
    out = np.empty_like(true_kpa_slab)
    for z in range(true_kpa_slab.shape[0]):
        blurred = gaussian_filter(true_kpa_slab[z], 1.1)
        noise = 1 + noise_sd * _smooth_field(rng, blurred.shape, 0.8)
        weak = np.clip((95 - conf[z]) / 30, 0, 1)
        artefact = art_amp * weak * _smooth_field(rng, blurred.shape, 2.0)
        speckle = 1.2 * weak * rng.normal(0, 1, blurred.shape)  # inversion noise where the wave is weak
        e = blurred * noise + artefact + speckle
        e[conf[z] <= 0] = 0
        out[z] = np.clip(e, 0, 12)
    return out.astype(np.float32)


def draw_magnitude(labels: np.ndarray, rng: np.random.Generator, variant: str) -> np.ndarray:
    """GRE-like magnitude ``(D, H, W)``: sub-slices averaged (partial volume), bias field, Rician noise."""
    from scipy.ndimage import gaussian_filter

    indep = variant == "independent"
    liver_int = rng.uniform(0.32, 0.55) if indep else rng.uniform(0.35, 0.5)
    yy, xx = grid()
    if indep:  # surface-coil-like: bright near the anterior and posterior coil arrays
        d_ant, d_post = yy / SIZE, (SIZE - yy) / SIZE
        bias = 0.7 + rng.uniform(0.3, 0.6) * (np.exp(-d_ant / 0.25) + np.exp(-d_post / 0.3))
    else:
        bias = 1 + 0.25 * ((SIZE - yy) / SIZE - 0.5) * rng.uniform(0.5, 1.5) + 0.1 * (xx / SIZE - 0.5)
    n_sub, depth = labels.shape[0], labels.shape[1]
    out = np.empty((depth, SIZE, SIZE), np.float32)
    sigma = rng.uniform(0.03, 0.06) if indep else rng.uniform(0.015, 0.04)
    texture = 1 + 0.06 * _smooth_field(rng, (depth, SIZE, SIZE), 3.0)
    for z in range(depth):
        img = np.zeros((SIZE, SIZE), np.float32)
        for s in range(n_sub):
            lab = labels[s, z]
            sub = np.zeros(lab.shape, np.float32)
            for k, v in _MAG.items():
                sub[lab == k] = v
            sub[lab == LIVER] = liver_int
            img += sub / n_sub
        img = gaussian_filter(img * texture[z], 0.7) * bias
        re, im = img + rng.normal(0, sigma, img.shape), rng.normal(0, sigma, img.shape)
        out[z] = np.hypot(re, im)
    return out


def draw_waves(true_kpa: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shear-wave displacement images ``(4, D, H, W)`` in [-1, 1] at 4 phase offsets."""
    from scipy.ndimage import gaussian_filter

    yy, xx = grid()
    d_mm = np.hypot(yy - 0.25 * SIZE, xx - 0.30 * SIZE) * PIXEL_MM
    out = np.zeros((4, *true_kpa.shape), np.float32)
    for z in range(true_kpa.shape[0]):
        g_pa = np.clip(gaussian_filter(true_kpa[z], 4.0), 0.5, None) * 1000
        wavelength_mm = np.sqrt(g_pa / 1000.0) / FREQUENCY_HZ * 1000  # c = sqrt(G / rho), rho = 1000
        phase = 2 * np.pi * d_mm / wavelength_mm
        amp = np.exp(-d_mm / 180.0) * (labels[z] != AIR)
        for t in range(4):
            out[t, z] = amp * np.cos(phase - t * np.pi / 2) + rng.normal(0, 0.03, phase.shape) * amp
    return out

