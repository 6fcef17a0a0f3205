"""Slice geometry of a DICOM series: one grid, order along the slice normal, spacing and affine.

Positions are ImagePositionPatient projected on the slice normal (the cross product of the
ImageOrientationPatient row and column vectors), in mm; affines follow NIfTI (RAS+).
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liverfib.errors import InputError
from liverfib.io.dicom_tags import multiframe_slice_spacing, positive_pair

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["check_same_grid", "series_affine", "slice_spacing_mm", "sort_slices"]


def _grid_key(ds: Dataset) -> tuple[Any, ...]:
    iop = ds.get("ImageOrientationPatient")
    iop_key = tuple(round(float(v), 3) for v in iop) if iop is not None and len(iop) == 6 else None
    ps = positive_pair(ds.get("PixelSpacing"))
    ps_key = tuple(round(v, 4) for v in ps) if ps is not None else None
    return (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0), iop_key, ps_key)


def check_same_grid(folder: Path, datasets: list[tuple[Path, Dataset]]) -> None:
    """:class:`InputError` listing the groups when the slices differ in size, orientation or spacing."""
    groups: dict[tuple[Any, ...], list[Path]] = defaultdict(list)
    for f, ds in datasets:
        groups[_grid_key(ds)].append(f)
    if len(groups) > 1:
        listed = "; ".join(
            f"{len(fs)} files {cols}x{rows}"
            f"{f' orientation {list(iop)}' if iop is not None else ''}"
            f"{f' spacing {list(ps)} mm' if ps is not None else ''} (e.g. {fs[0].name})"
            for (rows, cols, iop, ps), fs in groups.items()
        )
        raise InputError(
            f"{folder}: slices do not share one grid ({listed}); a series folder must hold slices "
            "of one size and orientation"
        )


def sort_slices(
    folder: Path, datasets: list[tuple[Path, Dataset]]
) -> tuple[list[tuple[Path, Dataset]], np.ndarray | None, str]:
    """Order slices along the normal (positions in mm) or, failing that, by InstanceNumber."""
    have_geometry = all(
        ds.get("ImagePositionPatient") is not None and ds.get("ImageOrientationPatient") is not None
        for _, ds in datasets
    )
    if have_geometry:
        iop = np.asarray([float(v) for v in datasets[0][1].ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        pos = np.asarray([np.dot([float(v) for v in ds.ImagePositionPatient], normal) for _, ds in datasets])
        order = np.argsort(pos, kind="stable")
        ordered = [datasets[i] for i in order]
        positions = pos[order]
        dup = np.flatnonzero(np.diff(positions) < 1e-3)
        if dup.size:
            a, b = ordered[dup[0]][0].name, ordered[dup[0] + 1][0].name
            raise InputError(
                f"{folder}: {a} and {b} lie at the same slice position ({positions[dup[0]]:.3f} mm; "
                f"{dup.size} duplicate{'s' if dup.size > 1 else ''} in all); the folder may hold "
                "several echoes, phases or time points - put each in its own folder"
            )
        return ordered, positions, "ImagePositionPatient"
    numbers = [ds.get("InstanceNumber") for _, ds in datasets]
    if all(n is not None for n in numbers):
        counts = Counter(int(n) for n in numbers)
        repeated = [n for n, c in counts.items() if c > 1]
        if repeated:
            raise InputError(
                f"{folder}: no ImagePositionPatient and InstanceNumber {repeated[0]} repeats; "
                "cannot order the slices"
            )
        order = np.argsort([int(n) for n in numbers], kind="stable")
        return [datasets[i] for i in order], None, "InstanceNumber"
    return sorted(datasets, key=lambda item: item[0].name), None, "file name"


def slice_spacing_mm(
    folder: Path, positions: np.ndarray | None, first: Dataset, meta: dict[str, Any]
) -> float | None:
    """Slice spacing in mm from positions (median step), else SpacingBetweenSlices/SliceThickness."""
    if positions is not None and positions.size > 1:
        steps = np.diff(positions)
        step = float(np.median(steps))
        if np.ptp(steps) > max(0.01, 0.01 * step):
            meta["slice_spacing_uneven"] = True
            meta["slice_steps_mm"] = (float(steps.min()), float(steps.max()))
            warnings.warn(
                f"{folder}: uneven slice spacing ({steps.min():.3f} to {steps.max():.3f} mm); using "
                f"the median {step:.3f} mm. A slice may be missing.",
                stacklevel=3,
            )
        return step
    return multiframe_slice_spacing(first)


def series_affine(
    ordered: list[tuple[Path, Dataset]], positions: np.ndarray, spacing: tuple[float, ...]
) -> np.ndarray:
    """4x4 RAS+ affine from voxel index (x=col, y=row, z=slice) to mm (NIfTI convention)."""
    first = ordered[0][1]
    iop = np.asarray([float(v) for v in first.ImageOrientationPatient])
    row_dir, col_dir = iop[:3], iop[3:]
    origin = np.asarray([float(v) for v in first.ImagePositionPatient])
    if len(ordered) > 1:
        last = np.asarray([float(v) for v in ordered[-1][1].ImagePositionPatient])
        slice_step = (last - origin) / (len(ordered) - 1)
    else:
        slice_step = np.cross(row_dir, col_dir) * spacing[0]
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing[2]  # along a row = increasing column index
    lps[:3, 1] = col_dir * spacing[1]  # along a column = increasing row index
    lps[:3, 2] = slice_step
    lps[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # DICOM LPS -> NIfTI RAS
