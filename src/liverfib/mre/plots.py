"""MRE figures: per-slice overlay PNGs (OpenCV) and the Bland-Altman / scatter plot (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from liverfib.io.atomic import atomic_write

__all__ = ["write_slice_overlays", "write_agreement_plot"]


def _save(fig: Any, path: Path) -> Path:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, dpi=100, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return atomic_write(path, data=buf.getvalue())


def write_slice_overlays(
    out_dir: Path,
    background: np.ndarray,
    stiffness_kpa: np.ndarray,
    liver: np.ndarray,
    roi: np.ndarray,
    slices: list[dict[str, Any]],
    vmax_kpa: float = 8.0,
    scale: int = 2,
    label: str | None = None,
) -> list[Path]:
    """One PNG per slice (OpenCV, fast): background in gray, stiffness inside the ROI in colour
    (jet, 0..``vmax_kpa`` kPa, colour bar on the right), liver outline white, ROI outline black, and
    the slice mean and ROI area written on top; ``label`` (e.g. ``"SYNTHETIC"``) in red in the title.
    Images are upscaled ``scale`` times (nearest)."""
    import cv2

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    bg = background.astype(np.float32)
    hi = float(np.percentile(bg, 99.5)) or 1.0
    for k in range(stiffness_kpa.shape[0]):
        gray = (np.clip(bg[k] / hi, 0, 1) * 255).astype(np.uint8)
        rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        colour = cv2.applyColorMap((np.clip(stiffness_kpa[k] / vmax_kpa, 0, 1) * 255).astype(np.uint8),
                                   cv2.COLORMAP_JET)
        blend = cv2.addWeighted(rgb, 0.3, colour, 0.7, 0)
        rgb[roi[k]] = blend[roi[k]]
        h, w = gray.shape
        rgb = cv2.resize(rgb, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
        for mask, colour_bgr in ((liver[k], (255, 255, 255)), (roi[k], (0, 0, 0))):
            m = cv2.resize(mask.astype(np.uint8), (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(rgb, contours, -1, colour_bgr, 1)
        bar = np.linspace(255, 0, h * scale).astype(np.uint8)[:, None].repeat(14, axis=1)
        bar = cv2.applyColorMap(bar, cv2.COLORMAP_JET)
        canvas = np.full((h * scale + 28, w * scale + 60, 3), 255, np.uint8)
        canvas[28:, : w * scale] = rgb
        canvas[28:, w * scale + 6 : w * scale + 20] = bar
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(canvas, f"{vmax_kpa:g}", (w * scale + 22, 40), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, "0 kPa", (w * scale + 22, h * scale + 24), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        s = slices[k]
        mean = f"{s['mean_kpa']:.2f} kPa" if s.get("mean_kpa") is not None else "no ROI"
        title = f"slice {s['slice']}: {mean}, ROI {s['area_mm2'] / 100:.1f} cm2"
        cv2.putText(canvas, title, (6, 19), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        if label:
            cv2.putText(canvas, label, (6, h * scale + 20), font, 0.6, (0, 0, 255), 2, cv2.LINE_AA)
        path = out_dir / f"overlay_slice{k + 1}.png"
        ok, png = cv2.imencode(".png", canvas)
        if not ok:
            raise OSError(f"{path}: cannot encode PNG")
        paths.append(atomic_write(path, data=png.tobytes()))
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
