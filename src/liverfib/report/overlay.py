"""Overlay images for masks and class-activation maps (PNG, written atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_heatmap_png", "write_cam_figure", "write_mask_overlay"]


def _atomic_png(rgb: np.ndarray, path: Path) -> Path:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover
        raise OSError(f"could not encode {path}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.tobytes())
    tmp.replace(path)
    return path


def _gray_rgb(array: np.ndarray) -> np.ndarray:
    from liverfib.preprocess.fan import to_uint8

    g = to_uint8(np.asarray(array))
    return np.stack([g, g, g], axis=-1)


def write_heatmap_png(heatmap: np.ndarray, path: str | Path) -> Path:
    """``(H, W)`` map in [0, 1] -> colour-mapped PNG (jet), same size."""
    import cv2

    u8 = (np.clip(heatmap, 0, 1) * 255).astype(np.uint8)
    bgr = cv2.applyColorMap(u8, cv2.COLORMAP_JET)
    return _atomic_png(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), Path(path))


def write_cam_figure(array: np.ndarray, heatmap: np.ndarray, path: str | Path, title: str, alpha: float = 0.4) -> Path:
    """Original beside CAM overlay, with a colour bar (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    h, w = heatmap.shape
    fig, axes = plt.subplots(1, 2, figsize=(10, 10 * h / (2 * w) + 0.8), dpi=100)
    axes[0].imshow(array, cmap="gray")
    axes[0].set_title("input")
    axes[1].imshow(array, cmap="gray")
    im = axes[1].imshow(heatmap, cmap="jet", alpha=alpha, vmin=0, vmax=1)
    axes[1].set_title(title)
    for ax in axes:
        ax.axis("off")
    fig.colorbar(im, ax=axes, fraction=0.025, pad=0.02, label="relevance (normalised)")
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def write_mask_overlay(array: np.ndarray, mask: np.ndarray, path: str | Path, color: tuple[int, int, int] = (255, 60, 60)) -> Path:
    """Input with the mask as a translucent fill and a solid contour; same size as the input."""
    import cv2

    rgb = _gray_rgb(array).astype(np.float32)
    m = mask.astype(bool)
    rgb[m] = 0.65 * rgb[m] + 0.35 * np.asarray(color, np.float32)
    out = rgb.astype(np.uint8)
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, color, thickness=max(1, min(mask.shape) // 240))
    return _atomic_png(out, Path(path))
