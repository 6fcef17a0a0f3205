"""MRE figures: per-slice overlay PNGs and the Bland-Altman / scatter plot (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_slice_overlays", "write_agreement_plot"]


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_slice_overlays(
    out_dir: Path,
    background: np.ndarray,
    stiffness_kpa: np.ndarray,
    liver: np.ndarray,
    roi: np.ndarray,
    slices: list[dict[str, Any]],
    vmax_kpa: float = 8.0,
) -> list[Path]:
    """One PNG per slice: background (gray), stiffness inside the ROI (colour, 0..vmax kPa),
    liver outline (white) and ROI outline (black); title gives the slice mean and area."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(stiffness_kpa.shape[0]):
        fig, ax = plt.subplots(figsize=(4.2, 4.0))
        ax.imshow(background[k], cmap="gray")
        shown = np.ma.masked_where(~roi[k], stiffness_kpa[k])
        im = ax.imshow(shown, cmap="jet", vmin=0, vmax=vmax_kpa, alpha=0.75)
        if liver[k].any():
            ax.contour(liver[k], levels=[0.5], colors="white", linewidths=0.8)
        if roi[k].any():
            ax.contour(roi[k], levels=[0.5], colors="black", linewidths=0.6)
        s = slices[k]
        mean = f"{s['mean_kpa']:.2f} kPa" if s.get("mean_kpa") is not None else "no ROI"
        ax.set_title(f"slice {k + 1}: {mean}, {s['area_mm2'] / 100:.1f} cm²", fontsize=9)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="kPa")
        fig.tight_layout()
        paths.append(_save(fig, out_dir / f"overlay_slice{k + 1}.png"))
    return paths


def write_agreement_plot(path: Path, a: np.ndarray, b: np.ndarray, ba: dict[str, Any],
                         label_a: str = "A", label_b: str = "B") -> Path:
    """Scatter (with identity line) and Bland-Altman (bias, limits of agreement) side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
    lim = (0, float(max(a.max(), b.max())) * 1.05)
    ax1.scatter(b, a, s=14)
    ax1.plot(lim, lim, "k--", lw=0.8)
    ax1.set(xlim=lim, ylim=lim, xlabel=f"{label_b} (kPa)", ylabel=f"{label_a} (kPa)", title="stiffness")
    mean, diff = (a + b) / 2, a - b
    k = ba["kpa"]
    ax2.scatter(mean, diff, s=14)
    for v, style in ((k["bias"], "-"), (k["loa_low"], "--"), (k["loa_high"], "--")):
        ax2.axhline(v, color="r", ls=style, lw=0.9)
    ax2.set(xlabel="mean (kPa)", ylabel=f"{label_a} - {label_b} (kPa)",
            title=f"Bland-Altman: bias {k['bias']:.3f}, LoA [{k['loa_low']:.3f}, {k['loa_high']:.3f}]")
    ax2.title.set_fontsize(9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, path)
