"""Synthetic MR elastography exams written as scanner-style DICOM series, with ground truth.

One exam is 4-5 axial slices, 256 x 256 at 1.6 mm (FOV 410 mm), 10 mm thick, 15 mm apart. Each
slice is an abdominal cross-section: body outline with subcutaneous fat, muscle, ribs, spine,
aorta and IVC, a lobulated liver (right lobe + left lobe, varied per exam and per slice) crossed by
vessels and the fissure for the ligamentum teres, and the spleen. Per exam:

* a **true stiffness field** (kPa): the liver gets a stage-specific base value drawn from
  :data:`STAGE_KPA_RANGES` with smooth heterogeneity that grows with stage, other tissues fixed
  values (spleen stiffer with stage, vessels fluid-like);
* the **elastogram** a scanner would show: the true field blurred (inversion smoothing),
  multiplicative noise, and inversion artefacts where the confidence is low;
* a **confidence map** (0-100 %): low at tissue boundaries, around vessels, along the fissure, at
  depth from the driver and in random wave-null patches, 0 outside the body;
* **magnitude** (GRE-like: bright fat, dark flowing blood and bone) with a bias field and Rician noise;
* **wave images**: 4 phase offsets of a 60 Hz shear wave whose wavelength follows the local stiffness.

DICOM layouts (modelled on the two conventions liverfib reads, see :mod:`liverfib.mre.dicom`):

* ``siemens``: four series ``*_MAG``, ``*_WAVE``, ``*_ELASTOGRAM`` (Pa in the pixels, kPa through a
  Real World Value Mapping item) and ``*_CONFIDENCE`` (percent), all files in one flat folder.
* ``ge``: three series ``MRE Magnitude``, ``MRE Wave Images``, ``MRE Stiffness`` (kPa through
  RescaleSlope/Intercept with RescaleType ``KPA``); the 95 % confidence limit is an overlay plane
  (60xx) on the stiffness images (1 = below 95 %). One sub-folder per series.

``truth.json`` holds ``liver_mask_path``, ``mean_stiffness_kpa`` (area-weighted mean of the true
field over the valid ROI: true liver ∩ confidence >= 95 % ∩ not vessel/fissure, eroded by the
edge margin of :class:`liverfib.mre.quantify.QuantifyConfig`), ``stage`` (the default cut-off table
applied to that mean) and ``manual_roi``: a simulated reader who draws a smooth ROI per slice with
personal margin, covering only the part of the liver around a spot of their choosing, and a
read-out from the elastogram (not the truth).

Stiffness ranges per stage (kPa) follow the interpretation table of Venkatesh, Yin & Ehman,
JMRI 2013;37:544-555 (< 2.5 normal ... > 5 cirrhosis), kept a little inside the cut-offs of
:data:`liverfib.mre.stages.DEFAULT_CUTOFFS` so that the intended stage is usually the true stage.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import ConfigError
from liverfib.mre.stages import STAGES, stage_from_kpa

__all__ = [
    "VENDORS",
    "STAGE_KPA_RANGES",
    "PhantomSlices",
    "simulate_exam",
    "write_exam",
    "write_phantoms",
]

VENDORS = ("siemens", "ge")

#: True base liver stiffness per intended stage (kPa); see the module docstring for the source.
STAGE_KPA_RANGES: dict[str, tuple[float, float]] = {
    "F0": (1.9, 2.4),
    "F1": (2.56, 2.74),
    "F2": (2.9, 3.9),
    "F3": (4.1, 4.9),
    "F4": (5.1, 7.5),
}
#: Heterogeneity (relative SD of the smooth liver stiffness field) per intended stage.
_HETEROGENEITY = {"F0": 0.04, "F1": 0.05, "F2": 0.07, "F3": 0.09, "F4": 0.12}

SIZE = 256
PIXEL_MM = 1.6
SLICE_THICKNESS_MM = 10.0
SLICE_GAP_MM = 15.0
FREQUENCY_HZ = 60.0

# tissue labels of the label map
_AIR, _FAT, _MUSCLE, _LIVER, _SPLEEN, _VESSEL, _BONE, _FISSURE = range(8)
_MAG = {_AIR: 0.0, _FAT: 0.85, _MUSCLE: 0.30, _SPLEEN: 0.55, _VESSEL: 0.10, _BONE: 0.12, _FISSURE: 0.80}
_KPA = {_AIR: 0.0, _FAT: 1.6, _MUSCLE: 2.7, _VESSEL: 0.8, _BONE: 9.0, _FISSURE: 1.6}


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

    @property
    def liver(self) -> np.ndarray:
        return self.labels == _LIVER

    @property
    def vessels(self) -> np.ndarray:
        return np.isin(self.labels, (_VESSEL, _FISSURE))


# ------------------------------------------------------------------------------------- geometry
def _grid() -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def _lobulated(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float,
               rng: np.random.Generator, amp: float = 0.10, rot: float = 0.0) -> np.ndarray:
    """An ellipse whose radius is modulated by a few random harmonics (lobulated outline)."""
    dy, dx = yy - cy, xx - cx
    c, s = math.cos(rot), math.sin(rot)
    u, v = c * dx + s * dy, -s * dx + c * dy
    theta = np.arctan2(v / ry, u / rx)
    r = np.hypot(u / rx, v / ry)
    bound = np.ones_like(theta)
    for k in range(2, 6):
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


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean, unit-SD Gaussian random field smoothed with ``sigma`` pixels."""
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.normal(size=shape), sigma)
    return (f - f.mean()) / (f.std() + 1e-8)


def _anatomy(rng: np.random.Generator, n_slices: int) -> np.ndarray:
    """Label maps ``(D, H, W)`` uint8 of one exam: shared body plan, per-slice variation."""
    from scipy.ndimage import binary_erosion

    yy, xx = _grid()
    H = SIZE
    body_s = rng.uniform(0.88, 1.04)
    body_ry, body_rx = 0.34 * H * body_s, 0.45 * H * body_s * rng.uniform(0.95, 1.05)
    fat_px = rng.uniform(6, 18)
    liver_c = (0.44 * H + rng.uniform(-8, 8), 0.34 * H + rng.uniform(-8, 8))
    liver_r = (0.20 * H * rng.uniform(0.85, 1.1), 0.19 * H * rng.uniform(0.85, 1.15))
    liver_rot = rng.uniform(-0.4, 0.4)
    lobe_r = (0.08 * H * rng.uniform(0.7, 1.3), 0.13 * H * rng.uniform(0.7, 1.3))
    spleen_c = (0.56 * H + rng.uniform(-8, 8), 0.80 * H + rng.uniform(-6, 4))
    vessel_seeds = [(rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), rng.uniform(2.0, 4.5))
                    for _ in range(int(rng.integers(4, 9)))]
    liver_seed = int(rng.integers(1 << 30))
    maps = np.zeros((n_slices, SIZE, SIZE), np.uint8)
    for z in range(n_slices):
        zr = z / max(n_slices - 1, 1) - 0.5  # -0.5 (cranial) .. 0.5 (caudal)
        srng = np.random.default_rng([liver_seed, z])
        lab = np.zeros((SIZE, SIZE), np.uint8)
        body = _lobulated(yy, xx, H / 2, H / 2, body_ry, body_rx, srng, amp=0.03)
        inner = binary_erosion(body, iterations=int(fat_px))
        lab[body] = _FAT
        lab[inner] = _MUSCLE
        # ribs in the body wall, laterally and posteriorly
        for ang in np.linspace(0.15 * np.pi, 0.95 * np.pi, int(srng.integers(4, 7))):
            for side in (-1, 1):
                a = ang * side
                ry_, rx_ = body_ry - fat_px - 4, body_rx - fat_px - 4
                lab[_disk(yy, xx, H / 2 + ry_ * math.cos(a) * 0.98, H / 2 + rx_ * math.sin(a),
                          srng.uniform(3.0, 5.5)) & body] = _BONE
        scale = 1.0 - 0.25 * zr * zr + srng.uniform(-0.04, 0.04)
        cy, cx = liver_c[0] + srng.uniform(-3, 3), liver_c[1] + srng.uniform(-3, 3)
        liver = _lobulated(yy, xx, cy, cx, liver_r[0] * scale, liver_r[1] * scale,
                           np.random.default_rng([liver_seed, 99]), amp=0.16, rot=liver_rot)
        if zr < 0.3:  # the left lobe crosses the midline in the cranial slices
            lobe = _lobulated(yy, xx, cy - 0.45 * liver_r[0], cx + 0.9 * liver_r[1],
                              lobe_r[0] * (1.1 - zr), lobe_r[1] * (1.1 - zr), srng, amp=0.2)
            liver |= lobe
        liver &= binary_erosion(inner, iterations=3)
        lab[liver] = _LIVER
        spleen = _lobulated(yy, xx, spleen_c[0] + 6 * zr, spleen_c[1], 0.10 * H * scale, 0.055 * H * scale,
                            srng, amp=0.15, rot=0.5)
        lab[spleen & inner & ~liver] = _SPLEEN
        # spine, aorta, IVC
        lab[_disk(yy, xx, H / 2 + body_ry - fat_px - 22, H / 2, 12)] = _BONE
        lab[_disk(yy, xx, H / 2 + body_ry - fat_px - 42, H / 2 + 8, 6.5)] = _VESSEL
        lab[_disk(yy, xx, H / 2 + body_ry - fat_px - 44, H / 2 - 16, 7.5)] = _VESSEL
        # hepatic / portal vessels inside the liver, plus one branching tube
        for vy, vx, vr in vessel_seeds:
            py = cy + vy * liver_r[0] * scale + srng.uniform(-3, 3)
            px = cx + vx * liver_r[1] * scale + srng.uniform(-3, 3)
            lab[_disk(yy, xx, py, px, vr * srng.uniform(0.8, 1.2)) & liver] = _VESSEL
        tube = _segment(yy, xx, (cy + 0.1 * liver_r[0], cx + 0.4 * liver_r[1]),
                        (cy - 0.4 * liver_r[0], cx - 0.3 * liver_r[1]), srng.uniform(1.5, 2.8))
        lab[tube & liver] = _VESSEL
        # fissure for the ligamentum teres: a thin fat cleft from the anterior edge
        fy0, fx0 = cy - 0.9 * liver_r[0] * scale, cx + 0.55 * liver_r[1]
        fissure = _segment(yy, xx, (fy0, fx0), (fy0 + srng.uniform(18, 30), fx0 - srng.uniform(0, 8)), 1.3)
        lab[fissure & liver] = _FISSURE
        maps[z] = lab
    return maps


# ---------------------------------------------------------------------------------- the signals
def _confidence(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Confidence (%) ``(D, H, W)`` float32: low near boundaries, vessels, fissure, depth, nulls."""
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    out = np.zeros(labels.shape, np.float32)
    yy, xx = _grid()
    for z, lab in enumerate(labels):
        edges = np.zeros_like(lab, dtype=bool)
        edges[:-1] |= lab[:-1] != lab[1:]
        edges[:, :-1] |= lab[:, :-1] != lab[:, 1:]
        d_edge = distance_transform_edt(~edges)
        d_vessel = distance_transform_edt(~np.isin(lab, (_VESSEL, _FISSURE)))
        body = lab != _AIR
        depth = distance_transform_edt(body)
        # driver on the anterior right abdominal wall: distance to it (pixels)
        d_driver = np.hypot(yy - 0.25 * SIZE, xx - 0.30 * SIZE)
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


def _true_stiffness(labels: np.ndarray, base_kpa: float, stage: str, rng: np.random.Generator) -> np.ndarray:
    het = _HETEROGENEITY[stage]
    field = np.zeros(labels.shape, np.float32)
    # fine heterogeneity + regional (lobe-scale) variation + a left-right gradient: where a reader
    # places the ROI matters, as in real livers
    xx = np.broadcast_to(np.arange(labels.shape[2], dtype=np.float32) / labels.shape[2] - 0.4, labels.shape)
    regional = 0.6 * _smooth_field(rng, labels.shape, sigma=6.0) + 0.9 * _smooth_field(rng, labels.shape, sigma=22.0)
    liver_field = base_kpa * (1 + het * regional + rng.normal(0, het) * 1.5 * xx)
    if stage == "F4":  # nodular texture in cirrhosis
        liver_field *= 1 + 0.04 * _smooth_field(rng, labels.shape, sigma=1.5)
    spleen_kpa = 3.2 + 0.9 * base_kpa
    for lab, kpa in _KPA.items():
        field[labels == lab] = kpa
    field[labels == _MUSCLE] *= 1 + 0.05 * _smooth_field(rng, labels.shape, 4.0)[labels == _MUSCLE]
    field[labels == _LIVER] = liver_field[labels == _LIVER]
    field[labels == _SPLEEN] = spleen_kpa
    return np.clip(field, 0, None).astype(np.float32)


def _elastogram(true_kpa: np.ndarray, conf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What the inversion shows: blurred truth, 3 % noise, artefacts where confidence is low."""
    from scipy.ndimage import gaussian_filter

    out = np.empty_like(true_kpa)
    for z in range(true_kpa.shape[0]):
        blurred = gaussian_filter(true_kpa[z], 1.1)
        noise = 1 + 0.03 * _smooth_field(rng, blurred.shape, 0.8)
        weak = np.clip((95 - conf[z]) / 30, 0, 1)
        artefact = 1.8 * weak * _smooth_field(rng, blurred.shape, 2.0)
        e = blurred * noise + artefact
        e[conf[z] <= 0] = 0
        out[z] = np.clip(e, 0, 12)
    return out.astype(np.float32)


def _magnitude(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    liver_int = rng.uniform(0.35, 0.5)
    yy, xx = _grid()
    bias = 1 + 0.25 * ((SIZE - yy) / SIZE - 0.5) * rng.uniform(0.5, 1.5) + 0.1 * (xx / SIZE - 0.5)
    out = np.empty(labels.shape, np.float32)
    sigma = rng.uniform(0.015, 0.04)
    for z, lab in enumerate(labels):
        img = np.zeros(lab.shape, np.float32)
        for k, v in _MAG.items():
            img[lab == k] = v
        img[lab == _LIVER] = liver_int
        img *= 1 + 0.06 * _smooth_field(rng, lab.shape, 3.0)
        img = gaussian_filter(img, 0.7) * bias
        re, im = img + rng.normal(0, sigma, img.shape), rng.normal(0, sigma, img.shape)
        out[z] = np.hypot(re, im)
    return out


def _waves(true_kpa: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shear-wave displacement images ``(4, D, H, W)`` in [-1, 1] at 4 phase offsets."""
    from scipy.ndimage import gaussian_filter

    yy, xx = _grid()
    d_mm = np.hypot(yy - 0.25 * SIZE, xx - 0.30 * SIZE) * PIXEL_MM
    out = np.zeros((4, *true_kpa.shape), np.float32)
    for z in range(true_kpa.shape[0]):
        g_pa = np.clip(gaussian_filter(true_kpa[z], 4.0), 0.5, None) * 1000
        wavelength_mm = np.sqrt(g_pa / 1000.0) / FREQUENCY_HZ * 1000  # c = sqrt(G / rho), rho = 1000
        phase = 2 * np.pi * d_mm / wavelength_mm
        amp = np.exp(-d_mm / 180.0) * (labels[z] != _AIR)
        for t in range(4):
            out[t, z] = amp * np.cos(phase - t * np.pi / 2) + rng.normal(0, 0.03, phase.shape) * amp
    return out


def _manual_roi(labels: np.ndarray, conf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A simulated reader's ROI: smooth, inside the liver, away from low confidence, some omissions."""
    from scipy.ndimage import binary_erosion, binary_opening, label

    margin = int(rng.integers(2, 6))
    smooth = int(rng.integers(3, 6))
    conf_seen = float(np.clip(95 + rng.normal(0, 1.5), 92.0, 97.0))  # how strictly the 95 % limit is followed
    yy, xx = _grid()
    out = np.zeros(labels.shape, bool)
    st = np.ones((3, 3), bool)
    for z, lab in enumerate(labels):
        liver = binary_erosion(lab == _LIVER, st, iterations=margin)
        allowed = liver & (conf[z] >= conf_seen)
        roi = binary_opening(allowed, st, iterations=smooth)
        if not roi.any():  # too little left for a smooth outline: the reader traces what is allowed
            roi = allowed
        if roi.any():  # the reader covers a part of the liver (an ellipse around a chosen spot)
            ys, xs = np.nonzero(roi)
            k = int(rng.integers(len(ys)))
            ry, rx = rng.uniform(20, 55), rng.uniform(20, 55)
            roi &= ((yy - ys[k]) / ry) ** 2 + ((xx - xs[k]) / rx) ** 2 <= 1
        comps, n = label(roi)
        if n > 1:  # readers draw one or two contiguous regions, not speckle
            sizes = np.bincount(comps.ravel())[1:]
            keep = np.argsort(sizes)[::-1][:2] + 1
            roi = np.isin(comps, keep)
        out[z] = roi
    return out


def simulate_exam(seed: int | tuple[int, ...], stage: str, vendor: str = "siemens",
                  n_slices: int | None = None) -> PhantomSlices:
    """Simulate one exam; deterministic for a given ``seed``."""
    if stage not in STAGES:
        raise ConfigError(f"Unknown stage '{stage}'. Valid choices: {', '.join(STAGES)}")
    if vendor not in VENDORS:
        raise ConfigError(f"Unknown vendor '{vendor}'. Valid choices: {', '.join(VENDORS)}")
    rng = np.random.default_rng(seed)
    if n_slices is None:
        n_slices = 5 if rng.random() < 0.6 else 4
    lo, hi = STAGE_KPA_RANGES[stage]
    base = float(rng.uniform(lo, hi))
    labels = _anatomy(rng, n_slices)
    conf = _confidence(labels, rng)
    true_kpa = _true_stiffness(labels, base, stage, rng)
    elasto = _elastogram(true_kpa, conf, rng)
    mag = _magnitude(labels, rng)
    waves = _waves(true_kpa, labels, rng)
    manual = _manual_roi(labels, conf, rng)
    return PhantomSlices(labels, true_kpa, elasto, conf, mag, waves, manual, stage, base, vendor)


# --------------------------------------------------------------------------------------- DICOM
def _base_dataset(study: dict[str, Any], z: int, n_slices: int) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for key in ("StudyInstanceUID", "FrameOfReferenceUID", "PatientID", "PatientName", "StudyDate",
                "Manufacturer", "ManufacturerModelName"):
        setattr(ds, key, study[key])
    ds.Modality = "MR"
    ds.BodyPartExamined = "LIVER"
    ds.MagneticFieldStrength = 1.5
    ds.ImagingFrequency = 63.9
    ds.Rows = ds.Columns = SIZE
    ds.PixelSpacing = [PIXEL_MM, PIXEL_MM]
    ds.SliceThickness = SLICE_THICKNESS_MM
    ds.SpacingBetweenSlices = SLICE_GAP_MM
    loc = (z - (n_slices - 1) / 2) * SLICE_GAP_MM
    ds.SliceLocation = loc
    half = SIZE * PIXEL_MM / 2
    ds.ImagePositionPatient = [-half, -half, loc]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.InstanceNumber = z + 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    return ds


def _series_writer(folder: Path, study: dict[str, Any], flat: bool):  # type: ignore[no-untyped-def]
    from pydicom.uid import generate_uid

    counter = {"n": 0}

    def write(number: int, desc: str, image_type: list[str], stack: np.ndarray, extra=None) -> None:  # type: ignore[no-untyped-def]
        uid = generate_uid()
        sub = folder if flat else folder / f"{number:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        n_slices = study["n_slices"]
        for k, plane in enumerate(stack):
            z = k % n_slices
            ds = _base_dataset(study, z, n_slices)
            ds.SeriesInstanceUID = uid
            ds.SeriesNumber = number
            ds.SeriesDescription = desc
            ds.ImageType = image_type
            ds.InstanceNumber = k + 1
            if k >= n_slices:  # wave images: several phase offsets per location
                ds.TemporalPositionIdentifier = k // n_slices + 1
            ds.PixelData = np.ascontiguousarray(plane.astype(np.uint16)).tobytes()
            if extra is not None:
                extra(ds, z)
            counter["n"] += 1
            name = f"IM_{counter['n']:04d}" if flat else f"I{k + 1:03d}.dcm"
            ds.save_as(sub / name, enforce_file_format=True)

    return write


def _rwvm(ds: Any) -> None:
    """Siemens-style stiffness: stored Pa, kPa through a Real World Value Mapping item."""
    from pydicom.dataset import Dataset

    units = Dataset()
    units.CodeValue = "kPa"
    units.CodingSchemeDesignator = "UCUM"
    units.CodeMeaning = "kilopascal"
    item = Dataset()
    item.LUTExplanation = "Stiffness"
    item.LUTLabel = "kPa"
    item.MeasurementUnitsCodeSequence = [units]
    item.RealWorldValueFirstValueMapped = 0
    item.RealWorldValueLastValueMapped = 65535
    item.RealWorldValueSlope = 0.001
    item.RealWorldValueIntercept = 0.0
    ds.RealWorldValueMappingSequence = [item]


def _overlay(mask: np.ndarray):  # type: ignore[no-untyped-def]
    """GE-style: an overlay plane on each stiffness image, 1 where confidence < 95 %."""
    from pydicom.pixels import pack_bits

    def extra(ds: Any, z: int) -> None:
        ds.RescaleSlope = 0.01
        ds.RescaleIntercept = 0.0
        ds.RescaleType = "KPA"
        ds.add_new(0x60000010, "US", SIZE)
        ds.add_new(0x60000011, "US", SIZE)
        ds.add_new(0x60000022, "LO", "Confidence < 95%")
        ds.add_new(0x60000040, "CS", "R")
        ds.add_new(0x60000050, "SS", [1, 1])
        ds.add_new(0x60000100, "US", 1)
        ds.add_new(0x60000102, "US", 0)
        ds.add_new(0x60003000, "OW", pack_bits(mask[z].astype(np.uint8).ravel()))

    return extra


def write_exam(exam: PhantomSlices, folder: Path, *, exam_id: str) -> dict[str, Any]:
    """Write ``exam`` as DICOM series + truth under ``folder``; returns the truth dict."""
    from pydicom.uid import generate_uid

    from liverfib.image import Image
    from liverfib.io.nifti import write_nifti
    from liverfib.mre.quantify import DEFAULT_QUANTIFY, measure_roi, valid_roi
    from liverfib.report.jsonio import write_json

    folder.mkdir(parents=True, exist_ok=True)
    d = exam.labels.shape[0]
    vendor = exam.vendor
    study = {
        "StudyInstanceUID": generate_uid(),
        "FrameOfReferenceUID": generate_uid(),
        "PatientID": f"PHANTOM-{exam_id}",
        "PatientName": "Phantom^MRE",
        "StudyDate": _dt.date(2026, 1, 1).strftime("%Y%m%d"),
        "Manufacturer": "SIEMENS" if vendor == "siemens" else "GE MEDICAL SYSTEMS",
        "ManufacturerModelName": "liverfib-phantom",
        "n_slices": d,
    }
    dicom_dir = folder / "dicom"
    write = _series_writer(dicom_dir, study, flat=vendor == "siemens")
    mag = np.clip(exam.magnitude / max(float(np.percentile(exam.magnitude, 99.5)), 1e-6) * 3000, 0, 4095)
    waves = np.clip((exam.waves.reshape(-1, SIZE, SIZE) + 1) * 2047.5, 0, 4095)
    stiff_pa = np.clip(np.round(exam.elastogram_kpa * 1000), 0, 65535)
    if vendor == "siemens":
        write(11, "ep2d_mre_MAG", ["ORIGINAL", "PRIMARY", "M", "ND"], mag)
        write(12, "ep2d_mre_WAVE", ["ORIGINAL", "PRIMARY", "P", "ND"], waves)
        write(13, "ep2d_mre_ELASTOGRAM", ["DERIVED", "PRIMARY", "ELASTOGRAM"], stiff_pa,
              extra=lambda ds, z: _rwvm(ds))
        write(14, "ep2d_mre_CONFIDENCE", ["DERIVED", "PRIMARY", "CONFIDENCE"], np.round(exam.confidence_pct))
    else:
        write(7, "MRE Magnitude", ["ORIGINAL", "PRIMARY", "OTHER"], mag)
        write(8, "MRE Wave Images", ["ORIGINAL", "PRIMARY", "OTHER"], waves)
        write(9, "MRE Stiffness", ["DERIVED", "SECONDARY", "OTHER"], np.round(exam.elastogram_kpa * 100),
              extra=_overlay(exam.confidence_pct < 95))
    # ground truth
    spacing = (SLICE_GAP_MM, PIXEL_MM, PIXEL_MM)
    truth_dir = folder / "truth"
    write_nifti(Image(exam.liver.astype(np.uint8), spacing_mm=spacing, modality="MR"), truth_dir / "liver_mask.nii.gz")
    roi = valid_roi(exam.liver, exam.confidence_pct, (PIXEL_MM, PIXEL_MM), DEFAULT_QUANTIFY, vessels=exam.vessels)
    write_nifti(Image(roi.astype(np.uint8), spacing_mm=spacing, modality="MR"), truth_dir / "valid_roi.nii.gz")
    true_m = measure_roi(exam.true_kpa, roi, (PIXEL_MM, PIXEL_MM))
    manual_m = measure_roi(exam.elastogram_kpa, exam.manual_roi, (PIXEL_MM, PIXEL_MM))
    if true_m["mean_stiffness_kpa"] is None:
        raise RuntimeError(f"phantom {exam_id}: empty valid ROI (bug in the generator)")
    truth = {
        "exam_id": exam_id,
        "vendor": vendor,
        "liver_mask_path": "truth/liver_mask.nii.gz",
        "valid_roi_path": "truth/valid_roi.nii.gz",
        "mean_stiffness_kpa": true_m["mean_stiffness_kpa"],
        "stage": stage_from_kpa(true_m["mean_stiffness_kpa"]),
        "intended_stage": exam.intended_stage,
        "base_stiffness_kpa": exam.base_kpa,
        "roi_area_mm2": true_m["roi_area_mm2"],
        "slices": true_m["slices"],
        "manual_roi": {
            "mean_stiffness_kpa": manual_m["mean_stiffness_kpa"],
            "stage": stage_from_kpa(manual_m["mean_stiffness_kpa"]) if manual_m["mean_stiffness_kpa"] else None,
            "roi_area_mm2": manual_m["roi_area_mm2"],
            "slices": manual_m["slices"],
            "method": "simulated reader: liver eroded by a personal margin (2-5 px), confidence >= 95 % "
                      "as judged by eye (SD 1.5 %, clipped to 92-97 %), smoothed outline, limited to an "
                      "ellipse (radii 32-88 mm) "
                      "around a spot of the reader's choosing; "
                      "value read from the elastogram",
        },
        "n_slices": d,
        "pixel_spacing_mm": [PIXEL_MM, PIXEL_MM],
        "slice_thickness_mm": SLICE_THICKNESS_MM,
        "frequency_hz": FREQUENCY_HZ,
        "stiffness_table": {k: list(v) for k, v in STAGE_KPA_RANGES.items()},
        "stiffness_table_source": "Venkatesh, Yin, Ehman, JMRI 2013;37:544-555 (interpretation table)",
    }
    write_json(truth, folder / "truth.json")
    return truth


def write_phantoms(out_dir: Path, n: int, seed: int = 0, *, vendor: str | None = None,
                   progress=None) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Write ``n`` exams under ``out_dir/mre_<seed>_<i>/``; stages cycle F0..F4, vendors alternate.

    Exam ``i`` is simulated from ``SeedSequence([seed, i])``: different ``seed`` values give
    disjoint exams (use them for held-out sets).
    """
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    if vendor is not None and vendor not in VENDORS:
        raise ConfigError(f"Unknown vendor '{vendor}'. Valid choices: {', '.join(VENDORS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    truths = []
    for i in range(n):
        stage = STAGES[i % len(STAGES)]
        v = vendor or VENDORS[(i // len(STAGES)) % len(VENDORS)]
        exam = simulate_exam((seed, i), stage, v)
        exam_id = f"mre_{seed:04d}_{i:03d}"
        truths.append(write_exam(exam, out_dir / exam_id, exam_id=exam_id))
        if progress is not None:
            progress(i + 1, n)
    return truths
