"""The SYNTHETIC generator: stage changes shape and texture measurably; nuisances are as documented."""

from __future__ import annotations

import numpy as np
import pytest

from liverfib.errors import ConfigError
from liverfib.mri.shape import surface_nodularity_index
from liverfib.mri.synthetic import synthesize_subject

SHAPE = (20, 64, 64)
SPACING = (6.0, 4.5, 4.5)


def _subjects(stage: int, n: int = 3):
    return [synthesize_subject(stage, seed=500 + 10 * stage + k, shape=SHAPE, p_missing=0.0) for k in range(n)]


def test_stage_increases_nodularity_caudate_ratio_and_spleen() -> None:
    s1, s4 = _subjects(1), _subjects(4)
    nod1 = [surface_nodularity_index(s.mask, SPACING) for s in s1]
    nod4 = [surface_nodularity_index(s.mask, SPACING) for s in s4]
    assert min(nod4) > max(nod1), (nod1, nod4)
    assert np.mean(nod4) > 1.25 * np.mean(nod1)
    assert min(s.params["caudate_right_ratio"] for s in s4) > max(s.params["caudate_right_ratio"] for s in s1)
    assert min(s.params["spleen_ml"] for s in s4) > max(s.params["spleen_ml"] for s in s1)


def test_phases_contrast_shift_and_grids() -> None:
    s = synthesize_subject(2, seed=7, shape=SHAPE, p_missing=0.0, vendor="B2")
    assert set(s.phases) == {"T1", "T2", "DWI_800", "GED1", "GED2", "GED3", "GED4"}
    assert s.params["shifts_mm"]["GED4"] == [0.0, 0.0, 0.0]
    assert any(v != 0 for p, sh in s.params["shifts_mm"].items() if p != "GED4" for v in sh)
    assert s.phases["DWI_800"].shape == (SHAPE[0], SHAPE[1] // 2, SHAPE[2] // 2)
    liver = s.mask > 0
    # GED4 (late phase) liver brighter than T2 liver relative to the body: phase-dependent contrast
    rel = {p: s.phases[p][liver].mean() / s.phases[p].mean() for p in ("T2", "GED4")}
    assert rel["GED4"] > rel["T2"] * 1.3
    np.testing.assert_array_equal(s.phase_masks["GED4"], s.mask)


def test_missing_phases_and_vendor_scale() -> None:
    a = synthesize_subject(1, seed=1, shape=SHAPE, p_missing=0.9, vendor="A")
    assert len(a.phases) < 7 and set(a.params["missing_phases"]) == set(
        ["T1", "T2", "DWI_800", "GED1", "GED2", "GED3", "GED4"]
    ) - set(a.phases)
    b2 = synthesize_subject(1, seed=1, shape=SHAPE, p_missing=0.0, vendor="B2")
    b1 = synthesize_subject(1, seed=1, shape=SHAPE, p_missing=0.0, vendor="B1")
    assert b2.phases["GED4"].mean() > 2 * b1.phases["GED4"].mean()
    with pytest.raises(ConfigError):
        synthesize_subject(5, seed=0)
