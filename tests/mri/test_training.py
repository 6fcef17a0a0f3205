"""Training paths: mean-teacher consistency runs; rigid registration undoes a known shift."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from liverfib.mri.crops import register_rigid
from liverfib.mri.seg_training import SliceSample, train_segmenter
from liverfib.mri.segmentation import SegModelConfig
from liverfib.mri.synthetic import synthesize_subject

torch.set_num_threads(1)


def test_mean_teacher_uses_unlabelled_slices() -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    disk = ((yy - 16) ** 2 + (xx - 14) ** 2 < 64).astype(np.uint8)
    labelled = [SliceSample((disk * 0.7 + rng.uniform(0, 0.2, disk.shape)).astype(np.float16), disk, f"g{i}", "toy") for i in range(4)]
    unlabelled = [SliceSample(rng.uniform(0, 1, (32, 32)).astype(np.float16), None, "u", "toy") for _ in range(4)]
    cfg = SegModelConfig(arch="unet", img_size=32, channels=(4, 8, 16), strides=(2, 2))
    net, rows = train_segmenter(labelled, cfg=cfg, steps=6, batch_size=2, unlabelled=unlabelled,
                                mean_teacher_weight=1.0, pretrained=False)
    assert len(rows) == 6 and rows[-1]["consistency"] > 0
    assert not net.training  # the EMA teacher is returned in eval mode


def test_rigid_registration_reduces_misalignment() -> None:
    s = synthesize_subject(2, seed=3, shape=(16, 48, 48), p_missing=0.0, max_shift_mm=0.0)
    fixed = s.phases["GED4"]
    moving = ndimage.shift(s.phases["GED3"], (0, 2.0, -2.0), order=1, mode="nearest")
    mask = s.mask.astype(bool)
    before = np.abs(moving - s.phases["GED3"])[mask].mean()
    after = np.abs(register_rigid(moving, fixed, (6.0, 4.5, 4.5)) - s.phases["GED3"])[mask].mean()
    assert after < 0.7 * before, (before, after)
