"""Overlap metrics and their bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pytest

from liverfib.errors import InputError
from liverfib.evaluation.resampling import bootstrap
from liverfib.evaluation.segmentation import overlap_scores, summarise_overlap


def test_dice_and_iou_match_hand_computation() -> None:
    a = np.zeros((10, 10), bool)
    a[:5] = True
    b = np.zeros((10, 10), bool)
    b[:4] = True
    s = overlap_scores(a, b)
    assert s["dice"] == pytest.approx(2 * 40 / 90, abs=1e-6)
    assert s["iou"] == pytest.approx(40 / 50, abs=1e-6)
    assert overlap_scores(a, ~a)["dice"] == 0.0


def test_shape_mismatch_raises() -> None:
    with pytest.raises(InputError):
        overlap_scores(np.zeros((3, 3), bool), np.zeros((3, 4), bool))


def test_bootstrap_ci_brackets_mean_and_groups_widen_it() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(0.8, 0.05, 60)
    ci = bootstrap(v)
    assert ci.low < v.mean() < ci.high
    groups = [str(i // 20) for i in range(60)]
    shifted = v + np.repeat([-0.1, 0.0, 0.1], 20)
    grouped, single = bootstrap(shifted, groups), bootstrap(shifted)
    assert grouped.high - grouped.low > single.high - single.low  # whole groups show the between-group spread


def test_summary_keys() -> None:
    s = summarise_overlap([{"dice": 0.5, "iou": 0.33}, {"dice": 0.7, "iou": 0.54}])
    assert s["n"] == 2 and s["dice"]["mean"] == pytest.approx(0.6) and len(s["dice"]["ci95"]) == 2
