"""Preprocessing for staging: bring phases onto one grid, optionally register, cut liver crops.

Output of :func:`exam_crops` for one exam, with ``P = len(LIQA_PHASES)`` phase slots, ``S`` slice
stacks and crop side ``N``:

* ``x``: ``(P, S, 3, N, N)`` float32 in [0, 1]; 3 adjacent axial slices per stack (2.5D);
  zeros in the slots of missing phases;
* ``present``: ``(P,)`` bool;
* ``liver``: ``(S, N, N)`` float32 0/1 liver mask of the centre slice (for the CAM regulariser);
* ``slice_index``: ``(S,)`` axial index of each stack's centre slice (may repeat in thin livers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from liverfib.errors import InputError
from liverfib.image import Image
from liverfib.mri.exam import LIQA_PHASES

__all__ = ["ExamCrops", "exam_crops", "register_rigid", "resample_onto", "crops_from_arrays"]


@dataclass(frozen=True)
class ExamCrops:
    x: np.ndarray
    present: np.ndarray
    liver: np.ndarray
    slice_index: np.ndarray | None = None


def _affine(image: Image) -> np.ndarray:
    aff = image.meta.get("affine")
    if aff is not None:
        return np.asarray(aff, dtype=np.float64)
    sz, sy, sx = image.spacing_mm or (1.0, 1.0, 1.0)
    return np.diag([-sx, -sy, sz, 1.0])


def resample_onto(moving: Image, reference: Image, *, order: int = 1) -> np.ndarray:
    """``moving`` resampled (trilinear) onto the voxel grid of ``reference`` through their affines.

    Returns a ``reference.shape`` float32 array; points outside ``moving`` take its nearest edge value.
    """
    if moving.shape == reference.shape and np.allclose(_affine(moving), _affine(reference), atol=1e-3):
        return moving.array.astype(np.float32)
    ref_aff, mov_aff = _affine(reference), _affine(moving)
    # NIfTI voxel order is (x, y, z) = reversed array axes
    m = np.linalg.inv(mov_aff) @ ref_aff
    flip = np.eye(4)[[2, 1, 0, 3]]  # (z,y,x,1) <-> (x,y,z,1)
    m_zyx = flip @ m @ flip
    return ndimage.affine_transform(
        moving.array.astype(np.float32), m_zyx[:3, :3], offset=m_zyx[:3, 3], output_shape=reference.shape,
        order=order, mode="nearest",
    ).astype(np.float32)


def register_rigid(moving: np.ndarray, fixed: np.ndarray, spacing_mm: tuple[float, float, float], *,
                   iterations: int = 40) -> np.ndarray:
    """Rigidly register ``moving`` to ``fixed`` (same grid, ``(D, H, W)``) with SimpleITK (Mattes MI).

    Returns ``moving`` resampled after registration. Phases differ in contrast, hence mutual
    information; a low-resolution, few-iteration setup (about a second per phase at 32x96x96).
    """
    import SimpleITK as sitk

    def to_sitk(a: np.ndarray) -> sitk.Image:
        img = sitk.GetImageFromArray(a.astype(np.float32))
        img.SetSpacing(tuple(float(s) for s in reversed(spacing_mm)))
        return img

    f, m = to_sitk(fixed), to_sitk(moving)
    init = sitk.CenteredTransformInitializer(f, m, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=24)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.2, seed=0)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=0.05, numberOfIterations=iterations)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetInitialTransform(init, inPlace=False)
    try:
        tx = reg.Execute(f, m)
    except RuntimeError:  # degenerate images (e.g. constant): keep the unregistered phase
        return moving.astype(np.float32)
    out = sitk.Resample(m, f, tx, sitk.sitkLinear, float(np.percentile(moving, 1)))
    return sitk.GetArrayFromImage(out).astype(np.float32)


def crops_from_arrays(
    phases: dict[str, np.ndarray],
    liver: np.ndarray,
    *,
    n_stacks: int = 4,
    size: int = 64,
    margin: float = 0.1,
    mask_input: bool = True,
) -> ExamCrops:
    """Liver crops from phase arrays already on one grid (``(D, H, W)`` each) and a liver mask."""
    import cv2

    if not liver.any():
        raise InputError("Liver mask is empty; cannot crop the liver (check the mask or the segmentation)")
    zs, ys, xs = np.nonzero(liver)
    d = liver.shape[0]
    z0, z1 = int(zs.min()), int(zs.max())
    span = z1 - z0
    centres = np.linspace(z0 + 0.15 * span, z1 - 0.15 * span, n_stacks).round().astype(int)
    h0, h1, w0, w1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = int(max(h1 - h0, w1 - w0) * (1 + 2 * margin)) + 1
    cy, cx = (h0 + h1) / 2, (w0 + w1) / 2
    top, left = int(round(cy - side / 2)), int(round(cx - side / 2))
    dil = ndimage.binary_dilation(liver > 0, iterations=2)

    def crop2d(a: np.ndarray) -> np.ndarray:
        pad = np.zeros((side, side), np.float32)
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + side, a.shape[0]), min(left + side, a.shape[1])
        pad[y0 - top : y1 - top, x0 - left : x1 - left] = a[y0:y1, x0:x1]
        return cv2.resize(pad, (size, size), interpolation=cv2.INTER_AREA)

    x = np.zeros((len(LIQA_PHASES), n_stacks, 3, size, size), np.float32)
    present = np.zeros(len(LIQA_PHASES), bool)
    for p, phase in enumerate(LIQA_PHASES):
        if phase not in phases:
            continue
        vol = phases[phase].astype(np.float32)
        vals = vol[liver > 0]
        lo, hi = np.percentile(vals, [1, 99]) if vals.size else (0.0, 1.0)
        lo, hi = lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo)  # liver mid-range, surroundings still visible
        vol = np.clip((vol - lo) / max(hi - lo, 1e-6), 0, 1)
        if mask_input:
            vol = vol * dil
        for s, k in enumerate(centres):
            for c, dk in enumerate((-1, 0, 1)):
                x[p, s, c] = crop2d(vol[int(np.clip(k + dk, 0, d - 1))])
        present[p] = True
    liver_crops = np.stack([crop2d(liver[int(k)].astype(np.float32)) for k in centres])
    return ExamCrops(x, present, (liver_crops > 0.5).astype(np.float32), centres)


def exam_crops(
    images: dict[str, Image],
    mask: np.ndarray,
    reference: str,
    *,
    register: bool = False,
    n_stacks: int = 4,
    size: int = 64,
    mask_input: bool = True,
) -> ExamCrops:
    """Crops for one exam: every phase resampled onto ``reference``'s grid (optionally rigidly
    registered to it), then :func:`crops_from_arrays` with ``mask`` (on the reference grid)."""
    ref = images[reference]
    if mask.shape != ref.shape:
        raise InputError(f"liver mask {mask.shape} is not on the {reference} grid {ref.shape}")
    arrays = {}
    for phase, img in images.items():
        a = ref.array.astype(np.float32) if phase == reference else resample_onto(img, ref)
        if register and phase != reference and ref.spacing_mm is not None:
            a = register_rigid(a, ref.array.astype(np.float32), ref.spacing_mm)  # type: ignore[arg-type]
        arrays[phase] = a
    return crops_from_arrays(arrays, mask, n_stacks=n_stacks, size=size, mask_input=mask_input)
