"""ROI rules, per-slice statistics and the area-weighted exam value against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from liverfib.errors import ConfigError, InputError
from liverfib.mre.quantify import QuantifyConfig, measure_roi, quantify_stiffness, valid_roi
from liverfib.mre.stages import DEFAULT_CUTOFFS, StageCutoffs, load_cutoffs, stage_from_kpa

NO_EDGE = QuantifyConfig(edge_margin_mm=0, vessel_robust_z=None)


def _exam():
    """2 slices 6x6; slice 0 ROI = 4 pixels (1,2,3,4 kPa), slice 1 ROI = 2 pixels (6, 8 kPa)."""
    stiff = np.zeros((2, 6, 6))
    liver = np.zeros((2, 6, 6), bool)
    conf = np.full((2, 6, 6), 99.0)
    stiff[0, 1, 1:5] = [1, 2, 3, 4]
    liver[0, 1, 1:5] = True
    stiff[1, 2, 2:5] = [6, 8, 50]
    liver[1, 2, 2:5] = True
    conf[1, 2, 4] = 94.9  # below the 95 % limit: excluded
    return stiff, liver, conf


def test_per_slice_and_area_weighted_mean_by_hand():
    stiff, liver, conf = _exam()
    res, roi = quantify_stiffness(stiff, liver, conf, (2.0, 0.5), config=NO_EDGE)
    assert roi.sum() == 6
    s0, s1 = res["slices"]
    assert s0["mean_kpa"] == pytest.approx(2.5) and s0["median_kpa"] == pytest.approx(2.5)
    assert s0["iqr_kpa"] == pytest.approx(3.25 - 1.75)  # numpy linear percentiles of 1,2,3,4
    assert s0["area_mm2"] == pytest.approx(4.0) and s1["area_mm2"] == pytest.approx(2.0)
    assert s1["mean_kpa"] == pytest.approx(7.0)
    assert res["mean_stiffness_kpa"] == pytest.approx((2.5 * 4 + 7.0 * 2) / 6)  # = 4.0
    assert res["roi_area_mm2"] == pytest.approx(6.0)
    assert res["stage"] == "F3"


def test_edge_margin_and_vessels():
    liver = np.zeros((1, 21, 21), bool)
    liver[0, 3:18, 3:18] = True
    conf = np.full(liver.shape, 100.0)
    roi = valid_roi(liver, conf, (1.0, 1.0), QuantifyConfig(edge_margin_mm=2, vessel_robust_z=None))
    assert roi[0, 5:16, 5:16].all() and roi.sum() == 11 * 11
    vessels = np.zeros_like(liver)
    vessels[0, 10, 10] = True
    roi_v = valid_roi(liver, conf, (1.0, 1.0), QuantifyConfig(edge_margin_mm=0), vessels=vessels)
    assert not roi_v[0, 10, 10] and roi_v.sum() == 15 * 15 - 1
    mag = np.full(liver.shape, 100.0) + np.random.default_rng(0).normal(0, 1, liver.shape)
    mag[0, 8, 8] = 10.0  # dark flowing blood
    roi_m = valid_roi(liver, conf, (1.0, 1.0), QuantifyConfig(edge_margin_mm=0), magnitude=mag)
    assert not roi_m[0, 8, 8] and not roi_m[0, 7, 8] and roi_m[0, 12, 12]


def test_empty_roi_is_a_clear_error_and_small_slices_can_be_dropped():
    stiff, liver, conf = _exam()
    with pytest.raises(InputError, match="no valid liver ROI"):
        quantify_stiffness(stiff, liver, np.zeros_like(conf), (1.0, 1.0), config=NO_EDGE)
    m = measure_roi(stiff, liver & (conf >= 95), (1.0, 1.0), min_slice_area_mm2=3)
    assert m["mean_stiffness_kpa"] == pytest.approx(2.5) and m["slices"][1]["used"] is False


def test_cutoff_table():
    assert stage_from_kpa(2.79) == "F1" and stage_from_kpa(2.8) == "F2"
    assert [stage_from_kpa(v) for v in (2.0, 2.6, 3.5, 4.5, 5.5)] == ["F0", "F1", "F2", "F3", "F4"]
    assert DEFAULT_CUTOFFS.f2_kpa == 2.8 and "Venkatesh" in DEFAULT_CUTOFFS.source
    with pytest.raises(ValueError, match="increasing"):
        StageCutoffs(f1_kpa=3.0, f2_kpa=2.8)


def test_cutoffs_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("f1_kpa: 2.9\nf2_kpa: 3.5\nf3_kpa: 4.0\nf4_kpa: 5.0\nsource: local\n")
    c = load_cutoffs(p)
    assert stage_from_kpa(3.0, c) == "F1"
    p.write_text("f1_kpa: 2.9\nf2: 3\n")
    with pytest.raises(ConfigError, match="invalid cut-off table"):
        load_cutoffs(p)
