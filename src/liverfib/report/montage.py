"""QC montage of a 3D mask: a few slices per axis with the mask outline, its volume and a legend.

The volume follows liverfib's axis convention (``(z, y, x)``, voxel axes towards L, P, S; see
:mod:`liverfib.io.orientation`), so the panels are drawn the radiological way: axial with anterior
up and patient right on the left, coronal and sagittal with superior up. Pixels keep their
physical aspect ratio (``spacing_mm``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.io.atomic import atomic_write

__all__ = ["montage_slices", "write_mask_montage"]

_AXES = ("axial", "coronal", "sagittal")
_OUTLINE = "#ff3030"


def montage_slices(mask: np.ndarray, n_per_axis: int = 3) -> dict[str, list[int]]:
    """Slice indices per view: evenly inside the mask's extent (the volume's, if the mask is empty).

    Args:
        mask: ``(z, y, x)`` binary mask.
        n_per_axis: slices per view.

    Returns:
        ``{"axial": [z...], "coronal": [y...], "sagittal": [x...]}``.
    """
    picks: dict[str, list[int]] = {}
    for view, axis in zip(_AXES, (0, 1, 2), strict=True):
        others = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(mask.any(axis=others)) if mask.any() else np.arange(mask.shape[axis])
        lo, hi = int(present[0]), int(present[-1])
        picks[view] = sorted({int(round(v)) for v in np.linspace(lo, hi, n_per_axis + 2)[1:-1]})
    return picks


def write_mask_montage(
    volume: np.ndarray,
    mask: np.ndarray,
    path: str | Path,
    *,
    spacing_mm: tuple[float, float, float] | None,
    volume_ml: float | None,
    title: str,
    label: str = "liver",
    synthetic: bool = False,
    n_per_axis: int = 3,
    window: tuple[float, float] | None = None,
) -> Path:
    """Write a PNG of ``n_per_axis`` slices per view (axial, coronal, sagittal) with the mask outline.

    Args:
        volume: ``(z, y, x)`` image (any intensity range; shown at its 1-99 percentiles).
        mask: ``(z, y, x)`` binary mask on the same grid.
        path: the ``.png`` to write (atomically).
        spacing_mm: ``(z, y, x)`` voxel size for the aspect ratio and the legend (``None``: 1 mm).
        volume_ml: mask volume shown in the title (``None``: unknown spacing).
        title: first title line (e.g. the input file name).
        label: what the mask shows (legend text).
        synthetic: add a visible SYNTHETIC label.
        window: display range (e.g. a CT soft-tissue window ``(-160, 240)`` HU); default: the
            volume's 1st-99th percentiles.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if volume.ndim != 3 or mask.shape != volume.shape:
        raise ValueError(f"need a 3D volume and a mask of its shape, got {volume.shape} and {mask.shape}")
    sz, sy, sx = spacing_mm if spacing_mm is not None else (1.0, 1.0, 1.0)
    lo, hi = window if window is not None else np.percentile(volume, [1, 99])
    picks = montage_slices(mask, n_per_axis)
    nz, ny, nx = volume.shape
    # row heights follow the panels' physical aspect (axial y/x, coronal z/x, sagittal z/y)
    ratios = [max(r, 0.25) for r in ((ny * sy) / (nx * sx), (nz * sz) / (nx * sx), (nz * sz) / (ny * sy))]
    panel_in = 3.0
    fig = Figure(figsize=(panel_in * n_per_axis, panel_in * sum(ratios) + 1.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(len(_AXES), n_per_axis, squeeze=False, gridspec_kw={"height_ratios": ratios})
    for row, view in enumerate(_AXES):
        for col in range(n_per_axis):
            ax = grid[row][col]
            ax.set_axis_off()
            if col >= len(picks[view]):
                continue
            _draw_panel(ax, volume, mask, view, picks[view][col], (sz, sy, sx), (lo, hi))
    vol_text = f"{volume_ml:.1f} ml" if volume_ml is not None else "volume unknown (no spacing)"
    spacing_text = f"voxel {sx:.2f} x {sy:.2f} x {sz:.2f} mm" if spacing_mm is not None else "voxel size unknown"
    heading = f"{title}\n{label} {vol_text}; {spacing_text}; radiological view (patient right on the left)"
    _add_heading(fig, "SYNTHETIC - " + heading if synthetic else heading, label)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write(Path(path), data=buf.getvalue())


def _draw_panel(
    ax: Any,
    volume: np.ndarray,
    mask: np.ndarray,
    view: str,
    k: int,
    spacing: tuple[float, float, float],
    display: tuple[float, float],
) -> None:
    """Slice ``k`` of ``view`` in gray (``display`` range) with the mask outline, at physical aspect."""
    sz, sy, sx = spacing
    if view == "axial":  # (y, x): anterior up, patient right on the left
        img, m, aspect, origin = volume[k], mask[k], sy / sx, "upper"
    elif view == "coronal":  # (z, x): superior up
        img, m, aspect, origin = volume[:, k, :], mask[:, k, :], sz / sx, "lower"
    else:  # sagittal (z, y): superior up, anterior on the left
        img, m, aspect, origin = volume[:, :, k], mask[:, :, k], sz / sy, "lower"
    lo, hi = display
    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, aspect=aspect, origin=origin, interpolation="nearest")
    if m.any() and not m.all():
        ax.contour(m.astype(np.float32), levels=[0.5], colors=_OUTLINE, linewidths=1.0, origin=origin)
    ax.set_title(f"{view} {k + 1}/{volume.shape[('axial', 'coronal', 'sagittal').index(view)]}", fontsize=8)


def _add_heading(fig: Any, heading: str, label: str) -> None:
    """Title above the panels and the outline legend below them."""
    from matplotlib.lines import Line2D

    fig.suptitle(heading, fontsize=9)
    fig.legend(
        handles=[Line2D([0], [0], color=_OUTLINE, lw=1.5, label=f"{label} mask outline")],
        loc="outside lower center",
        fontsize=8,
        frameon=False,
    )
