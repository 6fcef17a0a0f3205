"""The one voxel-axis convention of liverfib volumes (NIfTI and DICOM series alike).

A volume array is ``(z, y, x)`` with its voxel axes pointing to patient Left, Posterior and
Superior (``LPS``, DICOM's patient axes); ``meta["affine"]`` is the 4x4 NIfTI (RAS+) affine that
maps the voxel index ``(x, y, z, 1)`` to millimetres. Reorienting only flips and swaps axes (nibabel
orientation transforms), never resamples, so every voxel keeps its value and its world position.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_ornt_zyx", "axcodes", "invert_ornt", "reorient_to_lps"]


def reorient_to_lps(
    data_xyz: np.ndarray, affine: np.ndarray, zooms: list[float]
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], np.ndarray]:
    """Flip/swap the voxel axes of ``data_xyz`` (``(x, y, z)`` or ``(x, y)``) towards L, P, S.

    Args:
        data_xyz: voxels in the order of the affine's columns (NIfTI order).
        affine: 4x4 RAS+ affine of ``data_xyz``.
        zooms: voxel size in mm per axis of ``data_xyz``.

    Returns:
        ``(array_zyx, new_affine, spacing_zyx, transform)``: the reoriented array in ``(z, y, x)``
        order, its affine, its spacing in the same order, and the nibabel orientation transform
        (``(n, 2)``) that took ``data_xyz`` to the new grid (undo it with :func:`apply_ornt_zyx`
        and ``nibabel.orientations.ornt_transform`` swapped).
        A 2D input is only reoriented within its plane.
    """
    from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform

    flat = data_xyz.ndim == 2
    vol = data_xyz[..., None] if flat else data_xyz
    zooms3 = [*zooms, 1.0] if flat else list(zooms)
    start = io_orientation(affine)
    n_free = 2 if flat else 3  # a 2D image is only reoriented within its plane
    end = start.copy()
    world_axes = sorted(int(a) for a in start[:n_free, 0])
    for voxel_axis, world_axis in enumerate(world_axes):
        end[voxel_axis] = (world_axis, 1.0 if world_axis == 2 else -1.0)  # L, P, S in RAS+ terms
    transform = ornt_transform(start, end)
    new_affine = affine @ inv_ornt_aff(transform, vol.shape)  # the shape before the transform
    vol = apply_orientation(vol, transform)
    new_zooms = [0.0] * 3
    for old_axis, (new_axis, _) in enumerate(transform):
        new_zooms[int(new_axis)] = zooms3[old_axis]
    if flat:
        vol = vol[..., 0]
        new_zooms = new_zooms[:2]
    array = np.ascontiguousarray(vol.T)  # (x, y, z) -> (z, y, x)
    spacing = tuple(float(z) for z in reversed(new_zooms))
    return array, new_affine, spacing, transform


def apply_ornt_zyx(array_zyx: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Apply a nibabel orientation ``transform`` (defined on ``(x, y, z)`` axes) to a ``(z, y, x)`` array."""
    from nibabel.orientations import apply_orientation

    return np.ascontiguousarray(apply_orientation(array_zyx.T, np.asarray(transform)).T)


def invert_ornt(transform: np.ndarray) -> np.ndarray:
    """The nibabel orientation transform that undoes ``transform``."""
    inverse = np.zeros_like(transform)
    for old_axis, (new_axis, flip) in enumerate(transform):
        inverse[int(new_axis)] = (old_axis, flip)
    return inverse


def axcodes(affine: np.ndarray) -> tuple[str, ...]:
    """Axis codes of an affine's voxel axes, e.g. ``("L", "P", "S")``."""
    from nibabel.orientations import aff2axcodes

    return tuple(str(c) for c in aff2axcodes(affine))
