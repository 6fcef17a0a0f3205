"""Overlay images for masks and class-activation maps, each with a legend that says what its colours
mean (PNG, written through :func:`liverfib.io.atomic.atomic_write`)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from liverfib.io.atomic import atomic_write

__all__ = ["write_heatmap_png", "write_cam_figure", "write_mask_overlay", "CAM_LEGEND"]

#: The colour bar label of CAM figures (the jet colour map: blue = low, red = high relevance).
CAM_LEGEND = "relevance for the stage in the title (normalised): blue = low, red = high"


def _write_png(rgb: np.ndarray, path: Path) -> Path:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover
        raise OSError(f"could not encode {path}")
    with atomic_write(path, "wb") as fh:
        fh.write(buf.tobytes())
    return path


def _gray_rgb(array: np.ndarray) -> np.ndarray:
    from liverfib.preprocess.fan import to_uint8

    g = to_uint8(np.asarray(array))
    return np.stack([g, g, g], axis=-1)


def write_heatmap_png(heatmap: np.ndarray, path: str | Path) -> Path:
    """``(H, W)`` map in [0, 1] -> colour-mapped PNG (jet: blue 0 .. red 1), same size and no legend
    (it is the map itself; ``write_cam_figure`` draws it with a labelled colour bar)."""
    import cv2

    u8 = (np.clip(heatmap, 0, 1) * 255).astype(np.uint8)
    bgr = cv2.applyColorMap(u8, cv2.COLORMAP_JET)
    return _write_png(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), Path(path))


def write_cam_figure(array: np.ndarray, heatmap: np.ndarray, path: str | Path, title: str, alpha: float = 0.4) -> Path:
    """Original beside CAM overlay, with a colour bar labelled :data:`CAM_LEGEND` (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = heatmap.shape
    fig, axes = plt.subplots(1, 2, figsize=(10, 10 * h / (2 * w) + 0.8), dpi=100)
    axes[0].imshow(array, cmap="gray")
    axes[0].set_title("input")
    axes[1].imshow(array, cmap="gray")
    im = axes[1].imshow(heatmap, cmap="jet", alpha=alpha, vmin=0, vmax=1)
    axes[1].set_title(title)
    for ax in axes:
        ax.axis("off")
    bar = fig.colorbar(im, ax=axes, fraction=0.025, pad=0.02, ticks=[0, 0.5, 1])
    bar.set_label(CAM_LEGEND, fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())
    return Path(path)


def _draw_legend(rgb: np.ndarray, color: tuple[int, int, int], label: str) -> None:
    """Draw a swatch of ``color`` and ``label`` in a dark box in the lower-left corner, in place
    (outside the fan of the usual ultrasound layout; the image keeps its size)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = max(0.35, min(h, w) / 700)
    thick = max(1, round(scale * 1.5))
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad, sw = max(2, th // 2), th + base
    box_w, box_h = min(w, 3 * pad + sw + tw), min(h, 2 * pad + sw)
    y0 = h - box_h
    rgb[y0:h, :box_w] = (0.35 * rgb[y0:h, :box_w]).astype(np.uint8)
    cv2.rectangle(rgb, (pad, y0 + pad), (pad + sw, y0 + pad + sw), color, thickness=-1)
    cv2.putText(rgb, label, (2 * pad + sw, y0 + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                thick, cv2.LINE_AA)


def write_mask_overlay(array: np.ndarray, mask: np.ndarray, path: str | Path, color: tuple[int, int, int] = (255, 60, 60),
                       label: str | None = "liver mask") -> Path:
    """Input with the mask as a translucent fill and a solid contour, and a legend (a swatch of
    ``color`` = ``label``) in the lower-left corner; same size as the input. ``label=None``: no
    legend."""
    import cv2

    rgb = _gray_rgb(array).astype(np.float32)
    m = mask.astype(bool)
    rgb[m] = 0.65 * rgb[m] + 0.35 * np.asarray(color, np.float32)
    out = np.ascontiguousarray(rgb.astype(np.uint8))
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, color, thickness=max(1, min(mask.shape) // 240))
    if label:
        _draw_legend(out, color, label)
    return _write_png(out, Path(path))
