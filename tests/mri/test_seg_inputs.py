"""CT/MR segmenter inputs and post-processing: HU windowing, 2.5D stacks, hole filling, flip TTA,
the time-annealed schedule and the train/validation/test case split (issues #16.6, #19)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from liverfib.errors import ConfigError, InputError
from liverfib.mri.seg_training import SliceSample, train_segmenter
from liverfib.mri.segmentation import (
    SegModel,
    SegModelConfig,
    build_seg_net,
    context_stack,
    input_intensity,
    looks_like_hu,
    postprocess_mask,
)

torch.set_num_threads(1)
SPLIT = Path(__file__).resolve().parents[2] / "benchmarks" / "splits" / "ct_seg_split.csv"


class _ChannelNet(torch.nn.Module):
    """Logits = 40 * (channel ``c`` - 0.5): shows which slice of a 2.5D stack the model saw."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 40.0 * (x[:, self.c : self.c + 1] - 0.5)


class _LeftNet(torch.nn.Module):
    """Calls the left half of every image liver, whatever it shows (left-right asymmetric)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.full_like(x[:, :1], -20.0)
        out[..., : x.shape[-1] // 2] = 20.0
        return out


def test_hu_volume_is_windowed_and_8bit_slice_is_not() -> None:
    ct = np.full((4, 32, 32), -1000, np.int16)  # air
    ct[:, 8:24, 8:24] = 60  # liver, 60 HU
    ct[:, 12:14, 12:14] = 1500  # bone/contrast
    assert looks_like_hu(ct)
    x = input_intensity(ct, (-160.0, 240.0))
    assert x[0, 16, 16] == pytest.approx(0.55)  # (60 + 160) / 400, not squashed by the 1500 HU bone
    assert x[0, 0, 0] == 0.0 and x[0, 12, 12] == 1.0
    png = np.clip(ct // 8 + 128, 0, 255).astype(np.uint8)  # not HU: percentiles as before
    assert not looks_like_hu(png)
    assert input_intensity(png, (-160.0, 240.0)).max() == pytest.approx(1.0)
    mr = np.abs(ct).astype(np.float32)
    assert not looks_like_hu(mr)
    # without a window every input goes through percentiles (old checkpoints)
    assert input_intensity(ct, None)[0, 16, 16] != pytest.approx(0.55)


def test_context_stack_gives_neighbours_and_repeats_edges() -> None:
    vol = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((4, 2, 2), np.float32)
    s = context_stack(vol, 1)
    assert s.shape == (4, 3, 2, 2)
    assert [float(v) for v in s[0, :, 0, 0]] == [0, 0, 1]
    assert [float(v) for v in s[2, :, 0, 0]] == [1, 2, 3]
    assert [float(v) for v in s[3, :, 0, 0]] == [2, 3, 3]
    assert context_stack(vol, 0).shape == (4, 1, 2, 2)


def test_25d_model_sees_the_previous_slice() -> None:
    vol = np.zeros((3, 32, 32), np.float32)
    vol[0, 8:24, 8:24] = 1.0  # only slice 0 is bright
    prev = SegModel(_ChannelNet(0), SegModelConfig(img_size=32, context=1))
    probs = prev.predict_proba(vol)
    assert probs[1, 16, 16] > 0.99  # slice 1 sees slice 0 through its first channel
    assert probs[2, 16, 16] < 0.01
    lone = prev.predict_proba(vol[0])  # a lone 2D slice is repeated into all channels
    assert lone.shape == (32, 32) and lone[16, 16] > 0.99


def test_context_needs_the_2d_lite_net() -> None:
    with pytest.raises(ConfigError):
        build_seg_net(SegModelConfig(arch="unet", spatial_dims=3, context=1))


def test_fill_holes_and_largest_2d_component() -> None:
    m = np.zeros((20, 20), np.uint8)
    m[2:12, 2:12] = 1
    m[5:8, 5:8] = 0  # a vessel hole
    m[15:18, 15:18] = 1  # a stray island
    assert postprocess_mask(m).sum() == m.sum()  # 2D default: untouched
    out = postprocess_mask(m, fill_holes=True, largest_2d=True)
    assert out[6, 6] == 1 and out[16, 16] == 0 and out.sum() == 100
    vol = np.stack([m, m])
    out3 = postprocess_mask(vol, fill_holes=True)
    assert out3[:, 6, 6].all() and not out3[:, 16, 16].any()


def test_flip_tta_averages_the_mirrored_prediction() -> None:
    img = np.random.default_rng(0).uniform(0, 1, (32, 32)).astype(np.float32)
    plain = SegModel(_LeftNet(), SegModelConfig(img_size=32)).predict_proba(img)
    assert plain[:, :16].min() > 0.99 and plain[:, 16:].max() < 0.01
    tta = SegModel(_LeftNet(), SegModelConfig(img_size=32, tta_flip=True)).predict_proba(img)
    np.testing.assert_allclose(tta, 0.5, atol=1e-5)


def test_time_annealed_training_stops_at_the_time_limit() -> None:
    yy, xx = np.mgrid[:32, :32]
    disk = ((yy - 16) ** 2 + (xx - 14) ** 2 < 64).astype(np.uint8)
    samples = [SliceSample(np.stack([disk * 0.8] * 3).astype(np.float16), disk, f"g{i}", "toy") for i in range(3)]
    samples.append(SliceSample((disk * 0.8).astype(np.float16), disk, "g9", "toy2"))  # a lone 2D slice
    cfg = SegModelConfig(arch="unet-lite0", img_size=32, context=1)
    _, rows = train_segmenter(samples, cfg=cfg, steps=10_000, batch_size=2, pretrained=False,
                              time_limit_s=3.0, anneal_by_time=True)
    assert 1 <= len(rows) < 10_000 and rows[-1]["seconds"] < 10.0
    with pytest.raises(InputError):
        train_segmenter(samples, cfg=cfg, steps=2, pretrained=False, anneal_by_time=True)


def test_ct_split_keeps_old_test_cases_and_separates_validation() -> None:
    with SPLIT.open() as fh:
        split = {r["case"]: r["subset"] for r in csv.DictReader(fh)}
    old_test = {"chaos-ct/104", "curvas/10006", "curvas/10008", "curvas/10009", "ircad/10001", "ircad/10002",
                "ircad/10014", "ircad/10016", "mr-ct-liver/amos_ct_0013", "mr-ct-liver/dcmqi_ct"}
    assert {c for c, s in split.items() if s == "test"} == old_test
    val = {c for c, s in split.items() if s == "val"}
    assert {c.split("/")[0] for c in val} >= {"chaos-ct", "curvas", "ircad"}
    assert not val & old_test
