"""Staging: fusion over present phases, CAM penalty, crops on one grid, end-to-end on a phantom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from liverfib.image import Image
from liverfib.mri.crops import crops_from_arrays, resample_onto
from liverfib.mri.staging import (
    StagingConfig,
    build_staging_net,
    cam_outside_penalty,
    cumulative_to_stage_probs,
)
from liverfib.mri.synthetic import synthesize_subject

torch.set_num_threads(1)


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 7, 2, 3, 32, 32, generator=g)
    present = torch.tensor([[1, 0, 1, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    return x, present


@pytest.mark.parametrize("fusion", ["consensus", "attention"])
def test_missing_phases_do_not_influence_the_prediction(fusion: str) -> None:
    torch.manual_seed(0)
    net = build_staging_net(StagingConfig(fusion=fusion, n_stacks=2, crop_size=32, width=8)).eval()
    x, present = _inputs()
    with torch.no_grad():
        out = net(x, present)
        x2 = x.clone()
        x2[~present] = torch.rand_like(x2[~present]) * 5  # garbage in the absent slots
        out2 = net(x2, present)
    torch.testing.assert_close(out["logits"], out2["logits"])
    if fusion == "consensus":  # consensus = mean of the per-phase logits over the phases present
        for b in range(2):
            expected = out["phase_logits"][b, present[b]].mean(0)
            torch.testing.assert_close(out["logits"][b], expected)
    # a present phase does matter
    x3 = x.clone()
    x3[0, 0] = 1 - x3[0, 0]
    with torch.no_grad():
        assert not torch.allclose(net(x3, present)["logits"][0], out["logits"][0])


def test_cam_penalty_and_stage_probabilities() -> None:
    cam = torch.zeros(1, 7, 2, 4, 4)
    cam[..., :2, :] = 1.0  # all activation in the top half
    present = torch.ones(1, 7, dtype=torch.bool)
    top = torch.zeros(1, 2, 16, 16)
    top[..., :8, :] = 1
    assert float(cam_outside_penalty(cam, top, present)) == pytest.approx(0.0)
    assert float(cam_outside_penalty(cam, 1 - top, present)) == pytest.approx(1.0)
    probs = cumulative_to_stage_probs(np.array([[0.9, 0.6, 0.7], [0.1, 0.05, 0.01]]))
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert (probs >= 0).all() and probs[1].argmax() == 0


def test_crops_from_phases_on_different_grids() -> None:
    s = synthesize_subject(3, seed=5, shape=(16, 48, 48), p_missing=0.0)
    ref = Image(s.phases["GED4"], spacing_mm=s.spacing_mm["GED4"], modality="MR")
    dwi = Image(s.phases["DWI_800"], spacing_mm=s.spacing_mm["DWI_800"], modality="MR")
    on_ref = resample_onto(dwi, ref)
    assert on_ref.shape == ref.shape
    arrays = {p: (s.phases[p] if p != "DWI_800" else on_ref) for p in s.phases if p != "T2"}
    crops = crops_from_arrays(arrays, s.mask, n_stacks=2, size=32)
    assert crops.x.shape == (7, 2, 3, 32, 32) and crops.liver.shape == (2, 32, 32)
    assert crops.present.tolist() == [True, False, True, True, True, True, True]
    assert crops.x[1].max() == 0 and crops.x[0].max() > 0.5
    assert 0.1 < crops.liver.mean() < 0.9


ASSET = Path(__file__).resolve().parents[2] / "src" / "liverfib" / "assets" / "mri_staging_synthetic"


@pytest.mark.skipif(not ASSET.is_dir(), reason="shipped staging model not built")
def test_run_mri_stage_on_phantom_case_with_missing_phases(tmp_path: Path) -> None:
    from liverfib.mri.synthetic import write_liqa_dataset
    from liverfib.pipeline.mri import run_mri_stage

    write_liqa_dataset(tmp_path, 1, seed=77, shape=(20, 64, 64), p_missing=0.0)
    case = next(tmp_path.glob("Vendor_*/*"))
    summary, text = run_mri_stage(case, phases=["T1", "GED2", "GED4"])
    assert summary["phases_used"] == ["T1", "GED2", "GED4"]
    assert set(summary["missing_phases"]) == {"T2", "DWI_800", "GED1", "GED3"}
    assert 0 <= summary["p_s4"] <= 1 and 0 <= summary["p_s2_s4"] <= 1
    assert summary["stage"] in {"S1", "S2", "S3", "S4"} and "SYNTHETIC" in text
