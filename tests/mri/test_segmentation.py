"""Segmentation: metrics, post-processing, volume on a known ellipsoid, masks on the input grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from liverfib.evaluation.segmentation import dice_hd95
from liverfib.mri import segmentation as seg_mod
from liverfib.mri.segmentation import SegModel, SegModelConfig, keep_largest_component
from liverfib.mri.shape import liver_volume_ml
from liverfib.pipeline import _mri_common as mri_common
from liverfib.pipeline.segment_volume import run_segment_volume

ASSET = Path(seg_mod.__file__).resolve().parent.parent / "assets" / "mri_seg_default"


class _ThresholdNet(torch.nn.Module):
    """A 'segmenter' that calls bright voxels liver: logits = 40 * (x - 0.5); works in 2D and 3D."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 40.0 * (x - 0.5)


def _ellipsoid(shape, spacing, radii_mm):
    zz, yy, xx = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij")
    return ((zz / radii_mm[0]) ** 2 + (yy / radii_mm[1]) ** 2 + (xx / radii_mm[2]) ** 2 <= 1).astype(np.uint8)


@pytest.fixture
def threshold_model(monkeypatch: pytest.MonkeyPatch) -> None:
    model = SegModel(_ThresholdNet(), SegModelConfig(img_size=64), {"trained_on": "test threshold"})
    monkeypatch.setattr(mri_common, "liver_segmenter", lambda name="default": model)


def test_dice_hd95_and_largest_component() -> None:
    a = np.zeros((10, 20, 20), np.uint8)
    a[2:8, 5:15, 5:15] = 1
    assert dice_hd95(a, a, (2.0, 1.0, 1.0)) == (1.0, 0.0)
    b = np.roll(a, 2, axis=2)
    d, h = dice_hd95(b, a, (2.0, 1.0, 1.0))
    assert d == pytest.approx(2 * 6 * 10 * 8 / (2 * 600)) and h == pytest.approx(2.0)
    assert dice_hd95(a, np.zeros_like(a)) == (None, None)
    c = a.copy()
    c[0, 0, 0:3] = 1
    np.testing.assert_array_equal(keep_largest_component(c), a)


def test_volume_ml_of_known_ellipsoid() -> None:
    spacing = (2.0, 1.0, 1.0)
    mask = _ellipsoid((40, 80, 80), spacing, (30.0, 25.0, 20.0))
    analytic = 4 / 3 * np.pi * 30 * 25 * 20 / 1000
    assert liver_volume_ml(mask, spacing) == pytest.approx(analytic, rel=0.02)


def test_run_segment_volume_keeps_input_affine_and_volume(tmp_path: Path, threshold_model: None) -> None:
    spacing = (2.0, 1.5, 1.0)  # (z, y, x)
    truth = _ellipsoid((30, 50, 60), spacing, (22.0, 30.0, 24.0))
    rng = np.random.default_rng(0)
    vol = (truth.astype(np.float32) * 800 + 100 + rng.normal(0, 5, truth.shape)).astype(np.int16)
    # store in RAS voxel order with an oblique-free but non-trivial affine (flips + origin)
    data_xyz = vol.T[::-1, ::-1, :]
    affine = np.diag([1.0, 1.5, 2.0, 1.0])
    affine[:3, 3] = (-30.0, 12.5, -80.0)
    src = tmp_path / "case.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data_xyz), affine), src)
    summary, text = run_segment_volume([src], out=tmp_path / "mask.nii.gz")
    out = nib.load(tmp_path / "mask.nii.gz")
    np.testing.assert_allclose(out.affine, affine)
    assert out.shape == data_xyz.shape
    np.testing.assert_array_equal(np.asarray(out.dataobj), truth.T[::-1, ::-1, :])
    analytic = 4 / 3 * np.pi * 22 * 30 * 24 / 1000
    assert summary["volume_ml"] == pytest.approx(analytic, rel=0.03)
    assert "ml" in text


def test_run_segment_volume_on_png_slice(tmp_path: Path, threshold_model: None) -> None:
    import cv2

    img = np.zeros((70, 90), np.uint8)
    cv2.circle(img, (40, 35), 20, 200, -1)
    cv2.imwrite(str(tmp_path / "slice.png"), img)
    summary, _ = run_segment_volume([tmp_path / "slice.png"], out=tmp_path / "masks")
    mask = cv2.imread(str(tmp_path / "masks" / "slice_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert dice_hd95(mask > 0, img > 0)[0] > 0.97
    assert summary["results"][0]["kind"] == "slice"


@pytest.mark.skipif(not ASSET.is_dir(), reason="shipped segmentation model not built")
def test_shipped_model_segments_synthetic_mr() -> None:
    from liverfib.mri.synthetic import synthesize_subject

    torch.set_num_threads(1)
    model = mri_common.liver_segmenter("default")
    subj = synthesize_subject(2, seed=424242, shape=(20, 64, 64), p_missing=0.0)
    pred = model.segment(subj.phases["GED4"])
    dice, _ = dice_hd95(pred, subj.mask, (6.0, 4.5, 4.5))
    assert dice is not None and dice > 0.8


def test_3d_sliding_window_path_keeps_shape() -> None:
    cfg = SegModelConfig(arch="unet", spatial_dims=3, roi_size=(8, 24, 24), channels=(4, 8), strides=(2,))
    model = SegModel(_ThresholdNet(), cfg)
    truth = _ellipsoid((14, 40, 36), (2.0, 1.0, 1.0), (10.0, 14.0, 12.0))
    vol = truth.astype(np.float32) * 100 + 10
    vol[0, 0, 0:2] = 110  # a tiny separate blob: removed by the largest-component step
    pred = model.segment(vol)
    assert pred.shape == vol.shape and pred[0, 0, 0] == 0
    assert dice_hd95(pred, truth)[0] > 0.98


def test_3d_model_round_trips_as_an_mri_seg_3d_bundle(tmp_path: Path) -> None:
    from liverfib.models.bundle import load_bundle, save_bundle
    from liverfib.models.tasks import build_network, get_task

    torch.manual_seed(0)
    cfg = SegModelConfig(arch="unet", spatial_dims=3, roi_size=(16, 32, 32), channels=(4, 8, 16), strides=(2, 2))
    net = seg_mod.build_seg_net(cfg).eval()
    path = save_bundle(tmp_path / "m3d", net, **seg_mod.seg_bundle_fields(cfg, trained_on="test"))
    bundle = load_bundle(path)
    assert bundle.task == "mri-seg-3d" and get_task(bundle.task).kind == "segment3d"
    bundle.load_into(build_network(bundle.task, bundle.network))  # the registry row builds the same net
    model = mri_common.liver_segmenter(path)
    assert model.cfg.spatial_dims == 3 and model.info["trained_on"] == "test"
    vol = np.random.default_rng(0).random((20, 40, 36)).astype(np.float32)
    assert model.predict_proba(vol).shape == vol.shape
