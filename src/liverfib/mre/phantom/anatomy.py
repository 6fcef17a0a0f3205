"""Phantom anatomy: the slice grid and tissue label maps of one exam (body wall, ribs, spine, aorta,
IVC, a lobulated liver crossed by vessels and the fissure, the spleen), drawn per 10 mm slab as three
sub-slices (partial volume)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SIZE = 256
PIXEL_MM = 1.6
SLICE_THICKNESS_MM = 10.0
SLICE_GAP_MM = 15.0

# tissue labels of the label map
AIR, FAT, MUSCLE, LIVER, SPLEEN, VESSEL, BONE, FISSURE = range(8)

#: Through-plane offsets (mm) of the sub-slices averaged into one 10 mm slab (partial volume).
SUBSLICE_MM = (-3.3, 0.0, 3.3)


def grid() -> tuple[np.ndarray, np.ndarray]:
    """Pixel row and column coordinates ``(H, W)`` float32 of one slice."""
    return np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def _lobulated(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float,
               rng: np.random.Generator, amp: float = 0.10, rot: float = 0.0,
               harmonics: range = range(2, 6), power: float = 2.0) -> np.ndarray:
    """A super-ellipse (``power`` 2: an ellipse) whose radius is modulated by random harmonics."""
    dy, dx = yy - cy, xx - cx
    c, s = math.cos(rot), math.sin(rot)
    u, v = c * dx + s * dy, -s * dx + c * dy
    theta = np.arctan2(v / ry, u / rx)
    r = (np.abs(u / rx) ** power + np.abs(v / ry) ** power) ** (1.0 / power)
    bound = np.ones_like(theta)
    for k in harmonics:
        bound += amp / k * rng.normal() * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return r <= bound


def _disk(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _segment(yy: np.ndarray, xx: np.ndarray, p0: tuple[float, float], p1: tuple[float, float],
             half_width: float) -> np.ndarray:
    (y0, x0), (y1, x1) = p0, p1
    vy, vx = y1 - y0, x1 - x0
    t = np.clip(((yy - y0) * vy + (xx - x0) * vx) / max(vy * vy + vx * vx, 1e-6), 0, 1)
    return (yy - (y0 + t * vy)) ** 2 + (xx - (x0 + t * vx)) ** 2 <= half_width**2


@dataclass(frozen=True)
class _Habitus:
    """The per-exam draws that every slice of one exam shares (sizes in pixels)."""

    indep: bool
    body_ry: float
    body_rx: float
    fat_px: float
    liver_c: tuple[float, float]
    liver_r: tuple[float, float]
    liver_rot: float
    lobe_r: tuple[float, float]
    spleen_c: tuple[float, float]
    vessel_seeds: list[tuple[float, float, float]]
    power: float
    extra_lobe: tuple[float, float, float] | None
    liver_seed: int


def _draw_habitus(rng: np.random.Generator, variant: str) -> _Habitus:
    """Draw the exam's body habitus, organ placement and vessel seeds (in a fixed order)."""
    H = SIZE
    indep = variant == "independent"
    body_s = rng.uniform(0.80, 1.08) if indep else rng.uniform(0.86, 1.04)  # body habitus
    body_ry, body_rx = 0.34 * H * body_s, 0.45 * H * body_s * rng.uniform(0.92, 1.06)
    fat_px = rng.uniform(3, 28) if indep else rng.uniform(5, 20)  # lean .. obese
    liver_c = (0.44 * H + rng.uniform(-10, 10), 0.34 * H + rng.uniform(-10, 10))
    liver_r = (0.20 * H * rng.uniform(0.8, 1.12), 0.19 * H * rng.uniform(0.8, 1.18))
    liver_rot = rng.uniform(-0.5, 0.5)
    lobe_r = (0.08 * H * rng.uniform(0.6, 1.4), 0.13 * H * rng.uniform(0.6, 1.4))
    spleen_c = (0.56 * H + rng.uniform(-8, 8), 0.80 * H + rng.uniform(-6, 4))
    n_vessels = int(rng.integers(6, 13)) if indep else int(rng.integers(4, 9))
    vessel_r = (2.5, 5.5) if indep else (2.0, 4.5)
    vessel_seeds = [(rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), rng.uniform(*vessel_r)) for _ in range(n_vessels)]
    power = rng.uniform(2.3, 3.2) if indep else 2.0
    extra_lobe = (rng.uniform(-0.5, 0.5), rng.uniform(-0.6, -0.2), rng.uniform(0.45, 0.7)) if indep else None
    liver_seed = int(rng.integers(1 << 30))
    return _Habitus(indep, body_ry, body_rx, fat_px, liver_c, liver_r, liver_rot, lobe_r, spleen_c,
                    vessel_seeds, power, extra_lobe, liver_seed)


def _body_wall(lab: np.ndarray, yy: np.ndarray, xx: np.ndarray, hab: _Habitus,
               srng: np.random.Generator) -> np.ndarray:
    """Paint fat, muscle and ribs into ``lab``; return the inside of the muscle wall."""
    from scipy.ndimage import binary_erosion

    H = SIZE
    body = _lobulated(yy, xx, H / 2, H / 2, hab.body_ry, hab.body_rx, srng, amp=0.03)
    inner = binary_erosion(body, iterations=max(int(hab.fat_px), 1))
    lab[body] = FAT
    lab[inner] = MUSCLE
    for ang in np.linspace(0.15 * np.pi, 0.95 * np.pi, int(srng.integers(4, 7))):  # ribs
        for side in (-1, 1):
            a = ang * side
            ry_, rx_ = hab.body_ry - hab.fat_px - 4, hab.body_rx - hab.fat_px - 4
            lab[_disk(yy, xx, H / 2 + ry_ * math.cos(a) * 0.98, H / 2 + rx_ * math.sin(a),
                      srng.uniform(3.0, 5.5)) & body] = BONE
    return inner


def _liver(yy: np.ndarray, xx: np.ndarray, hab: _Habitus, zr: float, cy: float, cx: float, scale: float,
           srng: np.random.Generator) -> np.ndarray:
    """The liver outline of one sub-slice (right lobe, left lobe in cranial slices)."""
    liver_r = hab.liver_r
    shape_rng = np.random.default_rng([hab.liver_seed, 99])
    if hab.indep:
        liver = _lobulated(yy, xx, cy, cx, liver_r[0] * scale, liver_r[1] * scale, shape_rng, amp=0.22,
                           rot=hab.liver_rot, harmonics=range(3, 9), power=hab.power)
        ey, ex, er = hab.extra_lobe  # type: ignore[misc]
        liver |= _lobulated(yy, xx, cy + ey * liver_r[0], cx + ex * liver_r[1], er * liver_r[0] * scale,
                            er * liver_r[1] * scale, shape_rng, amp=0.15, harmonics=range(3, 7))
    else:
        liver = _lobulated(yy, xx, cy, cx, liver_r[0] * scale, liver_r[1] * scale, shape_rng,
                           amp=0.16, rot=hab.liver_rot)
    if zr < 0.3:  # the left lobe crosses the midline in the cranial slices
        lobe = _lobulated(yy, xx, cy - 0.45 * liver_r[0], cx + 0.9 * liver_r[1],
                          hab.lobe_r[0] * (1.1 - zr), hab.lobe_r[1] * (1.1 - zr), srng, amp=0.2)
        liver |= lobe
    return liver


def _vessels(lab: np.ndarray, yy: np.ndarray, xx: np.ndarray, hab: _Habitus, liver: np.ndarray, zr: float,
             cy: float, cx: float, scale: float, srng: np.random.Generator) -> None:
    """Paint spine, aorta, IVC, the liver's vessels and the fissure into ``lab``."""
    H, liver_r, body_ry, fat_px = SIZE, hab.liver_r, hab.body_ry, hab.fat_px
    lab[_disk(yy, xx, H / 2 + body_ry - fat_px - 22, H / 2, 12)] = BONE  # spine
    lab[_disk(yy, xx, H / 2 + body_ry - fat_px - 42, H / 2 + 8, 6.5)] = VESSEL  # aorta
    lab[_disk(yy, xx, H / 2 + body_ry - fat_px - 44, H / 2 - 16, 7.5)] = VESSEL  # IVC
    for vy, vx, vr in hab.vessel_seeds:  # hepatic / portal vessels, drifting with z
        py = cy + vy * liver_r[0] * scale + srng.uniform(-3, 3) + 20 * vx * zr
        px = cx + vx * liver_r[1] * scale + srng.uniform(-3, 3) - 20 * vy * zr
        lab[_disk(yy, xx, py, px, vr * srng.uniform(0.8, 1.2)) & liver] = VESSEL
    tube = _segment(yy, xx, (cy + 0.1 * liver_r[0], cx + 0.4 * liver_r[1]),
                    (cy - 0.4 * liver_r[0], cx - 0.3 * liver_r[1]), srng.uniform(1.5, 2.8))
    lab[tube & liver] = VESSEL
    fy0, fx0 = cy - 0.9 * liver_r[0] * scale, cx + 0.55 * liver_r[1]  # fissure (ligamentum teres)
    fissure = _segment(yy, xx, (fy0, fx0), (fy0 + srng.uniform(18, 30), fx0 - srng.uniform(0, 8)), 1.3)
    lab[fissure & liver] = FISSURE


def _sub_slice(hab: _Habitus, z: int, zr: float) -> np.ndarray:
    """Label map ``(H, W)`` uint8 of one sub-slice at relative height ``zr`` (-0.5 cranial .. 0.5 caudal)."""
    from scipy.ndimage import binary_erosion

    yy, xx = grid()
    srng = np.random.default_rng([hab.liver_seed, z])  # same draws in every sub-slice of a slab
    lab = np.zeros((SIZE, SIZE), np.uint8)
    inner = _body_wall(lab, yy, xx, hab, srng)
    scale = 1.0 - 0.35 * zr * zr + srng.uniform(-0.04, 0.04)
    cy = hab.liver_c[0] + srng.uniform(-3, 3) + 14 * zr  # the liver moves with z
    cx = hab.liver_c[1] + srng.uniform(-3, 3)
    liver = _liver(yy, xx, hab, zr, cy, cx, scale, srng)
    liver &= binary_erosion(inner, iterations=3)
    lab[liver] = LIVER
    spleen = _lobulated(yy, xx, hab.spleen_c[0] + 6 * zr, hab.spleen_c[1], 0.10 * SIZE * scale,
                        0.055 * SIZE * scale, srng, amp=0.15, rot=0.5)
    lab[spleen & inner & ~liver] = SPLEEN
    _vessels(lab, yy, xx, hab, liver, zr, cy, cx, scale, srng)
    return lab


def draw_anatomy(rng: np.random.Generator, n_slices: int, variant: str) -> np.ndarray:
    """Label maps ``(S, D, H, W)`` uint8: ``S`` sub-slices per slab (centre = index 1)."""
    hab = _draw_habitus(rng, variant)
    zr_per_mm = 1.0 / max((n_slices - 1) * SLICE_GAP_MM, 1.0)
    maps = np.zeros((len(SUBSLICE_MM), n_slices, SIZE, SIZE), np.uint8)
    for z in range(n_slices):
        for si, dz_mm in enumerate(SUBSLICE_MM):
            zr = z / max(n_slices - 1, 1) - 0.5 + dz_mm * zr_per_mm  # -0.5 (cranial) .. 0.5 (caudal)
            maps[si, z] = _sub_slice(hab, z, zr)
    return maps
