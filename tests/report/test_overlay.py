"""Overlay PNGs say what their colours mean: a legend swatch in mask overlays, a labelled colour
bar in CAM figures; all are written through the one atomic write."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from liverfib.report import overlay
from liverfib.report.overlay import CAM_LEGEND, write_cam_figure, write_heatmap_png, write_mask_overlay

RED = (255, 60, 60)


def _corner_swatch(path: Path) -> int:
    """Pixels of exactly the mask colour in the lower-left 60 x 200 corner."""
    rgb = cv2.imread(str(path))[..., ::-1]
    corner = rgb[-60:, :200].astype(int)
    return int(np.all(corner == RED, axis=-1).sum())


def test_mask_overlay_has_a_legend_and_keeps_the_size(tmp_path: Path) -> None:
    image = np.full((480, 640), 90, np.uint8)
    mask = np.zeros_like(image, bool)
    mask[100:300, 200:500] = True  # far from the legend corner
    with_legend = write_mask_overlay(image, mask, tmp_path / "a.png")
    without = write_mask_overlay(image, mask, tmp_path / "b.png", label=None)
    assert cv2.imread(str(with_legend)).shape[:2] == image.shape
    assert _corner_swatch(with_legend) > 50  # the swatch
    assert _corner_swatch(without) == 0
    # the legend box darkens the corner and carries white text
    corner = cv2.imread(str(with_legend), cv2.IMREAD_GRAYSCALE)[-30:, :200]
    assert corner.min() < 60 and corner.max() > 200


def test_legend_fits_a_small_image(tmp_path: Path) -> None:
    image = np.zeros((40, 48), np.uint8)
    out = write_mask_overlay(image, image > 0, tmp_path / "s.png", label="liver mask")
    assert cv2.imread(str(out)).shape[:2] == (40, 48)


def test_cam_figure_labels_its_colour_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt

    figures = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: (figures.append(fig), close(fig)))
    rng = np.random.default_rng(0)
    path = write_cam_figure(rng.random((60, 80)), rng.random((60, 80)), tmp_path / "cam.png", "gradcam: F2")
    labels = [ax.get_ylabel() for ax in figures[0].axes]
    assert CAM_LEGEND in labels and "blue = low" in CAM_LEGEND
    assert cv2.imread(str(path)) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.png"]  # no temporary left


def test_writes_go_through_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing write leaves the earlier file as it was (the one atomic write is used)."""
    target = tmp_path / "h.png"
    write_heatmap_png(np.zeros((8, 8)), target)
    before = target.read_bytes()
    calls = []
    real = overlay.atomic_write

    def failing(path, mode="w", **kw):  # type: ignore[no-untyped-def]
        calls.append(Path(path))
        raise OSError("disk full")

    monkeypatch.setattr(overlay, "atomic_write", failing)
    for write in (lambda: write_heatmap_png(np.ones((8, 8)), target),
                  lambda: write_mask_overlay(np.ones((8, 8)), np.ones((8, 8)), target),
                  lambda: write_cam_figure(np.ones((8, 8)), np.ones((8, 8)), target, "t")):
        with pytest.raises(OSError, match="disk full"):
            write()
    assert calls == [target] * 3 and target.read_bytes() == before
    assert real is not failing
