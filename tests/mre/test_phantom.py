"""Phantom exams: the truth comes from the generator (true field, true liver, reader-style ROI), never
from liverfib.mre.quantify, and does not depend on the confidence map."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import binary_fill_holes, distance_transform_cdt, distance_transform_edt

from liverfib.errors import ConfigError
from liverfib.io.nifti import read_nifti
from liverfib.mre import phantom
from liverfib.mre.phantom import STAGE_KPA_RANGES, reader_roi, simulate_exam
from liverfib.mre.stages import stage_from_kpa

REQUIRED = {"liver_mask_path", "reader_roi_path", "true_stiffness_path", "mean_stiffness_kpa", "stage",
            "manual_roi", "synthetic", "truth_rule"}


def test_generator_does_not_use_the_code_under_test():
    """The truth must not come from the pipeline: the phantom package imports no quantify/segment/pipeline code."""
    files = sorted(Path(phantom.__file__).parent.glob("*.py"))
    assert len(files) > 1
    imported: set[str] = set()
    for tree in (ast.parse(f.read_text()) for f in files):
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    banned = {m for m in imported if m.startswith(("liverfib.mre.quantify", "liverfib.mre.segment",
                                                   "liverfib.pipeline", "liverfib.mre.dicom"))}
    assert not banned, banned


@pytest.mark.parametrize("name", ["siemens", "ge", "indep"])
def test_truth_is_the_true_field_over_the_reader_roi(mre_exams, name):
    e = getattr(mre_exams, name)
    t, sim = e.truth, e.sim
    assert REQUIRED <= set(t) and t["synthetic"] is True
    mask = read_nifti(e.dir / t["liver_mask_path"]).array.astype(bool)
    roi = read_nifti(e.dir / t["reader_roi_path"]).array.astype(bool)
    field = read_nifti(e.dir / t["true_stiffness_path"]).array
    np.testing.assert_array_equal(mask, sim.liver)
    np.testing.assert_allclose(field, sim.true_kpa, rtol=1e-6)
    # the number in truth.json is the mean of the noise-free field over the ROI (not of the elastogram)
    assert t["mean_stiffness_kpa"] == pytest.approx(float(field[roi].mean()), rel=1e-6)
    assert t["mean_stiffness_kpa"] != pytest.approx(float(sim.elastogram_kpa[roi].mean()), rel=1e-4)
    assert t["stage"] == stage_from_kpa(t["mean_stiffness_kpa"])
    # reader-style ROI: inside the liver, > 3 px (city-block) from its outline, > 2 px from every vessel
    assert roi.sum() > 1000 and not (roi & ~sim.liver).any()
    for z in range(roi.shape[0]):
        organ = binary_fill_holes(sim.liver[z] | (sim.vessels[z] & (distance_transform_edt(~sim.liver[z]) <= 2)))
        assert distance_transform_cdt(organ, metric="taxicab")[roi[z]].min() > 3
        if sim.vessels[z].any():
            assert distance_transform_cdt(~sim.vessels[z], metric="taxicab")[roi[z]].min() > 2
    # the truth ignores the confidence map: the ROI keeps low-confidence liver
    assert (roi & (sim.confidence_pct < 95)).sum() > 50
    lo, hi = STAGE_KPA_RANGES[sim.intended_stage]
    assert lo <= t["base_stiffness_kpa"] <= hi
    assert t["mean_stiffness_kpa"] == pytest.approx(t["base_stiffness_kpa"], rel=0.2)
    assert [s["slice"] for s in t["slices"]] == list(range(1, sim.labels.shape[0] + 1))


def test_reader_roi_rule_by_hand():
    """A 40x40 liver square with one vessel pixel: ROI = square shrunk by 3 px, minus a 2-px diamond."""
    lab = np.zeros((1, 60, 60), np.uint8)
    lab[0, 10:50, 10:50] = 3  # liver label
    lab[0, 30, 30] = 5  # vessel label
    roi = reader_roi(lab)[0]
    assert roi[13:47, 13:47].sum() == roi.sum()  # eroded by 3 px (4-connected)
    assert not roi[12, 20] and roi[13, 20]
    assert not roi[30, 28] and not roi[32, 30] and roi[30, 27] and roi[33, 30]
    assert roi.sum() == 34 * 34 - 13  # the vessel and its 2-px diamond (13 pixels) are out


def test_manual_roi_has_reader_variability(mre_exams):
    for e in (mre_exams.siemens, mre_exams.ge):
        m, t = e.truth["manual_roi"], e.truth
        assert m["mean_stiffness_kpa"] != t["mean_stiffness_kpa"]
        assert m["mean_stiffness_kpa"] == pytest.approx(t["mean_stiffness_kpa"], rel=0.1)
        roi = e.sim.manual_roi
        assert roi.any() and not (roi & ~e.sim.liver).any()  # drawn inside the liver only
        assert m["mean_stiffness_kpa"] == pytest.approx(float(e.sim.elastogram_kpa[roi].mean()))


def test_realism_partial_volume_variants_and_confidence():
    a = simulate_exam((5, 0), "F2", n_slices=4)
    b = simulate_exam((5, 0), "F2", n_slices=4)
    c = simulate_exam((5, 0), "F2", n_slices=4, variant="independent")
    np.testing.assert_array_equal(a.elastogram_kpa, b.elastogram_kpa)
    assert not np.array_equal(a.labels, c.labels)
    # partial volume through the 10 mm slab: some pixels are only partly liver, and the magnitude
    # there lies between the liver level and that of the neighbouring tissue
    from scipy.ndimage import binary_dilation

    partial = (a.liver_fraction > 0) & (a.liver_fraction < 1)
    assert partial.sum() > 100
    st = np.ones((1, 3, 3), bool)
    inner = a.liver & ~binary_dilation(~a.liver | a.vessels, st, iterations=4)
    assert a.magnitude[partial].std() > a.magnitude[inner].std()
    # low confidence where the issue says: liver edges and vessels; noisier elastogram there
    near_vessel = binary_dilation(a.vessels) & a.liver
    assert np.median(a.confidence_pct[near_vessel]) < 95 < np.median(a.confidence_pct[a.liver])
    low, high = a.liver & (a.confidence_pct < 80), a.liver & (a.confidence_pct >= 95)
    err = np.abs(a.elastogram_kpa - a.true_kpa)
    assert err[low].mean() > 3 * err[high].mean()


def test_stiffness_grows_with_stage():
    exams = [simulate_exam((8, k), s, n_slices=4) for k, s in enumerate(("F0", "F2", "F4"))]
    means = [e.true_kpa[e.liver].mean() for e in exams]
    assert means[0] < 2.5 < means[1] < 4.0 < 5.0 < means[2]


def test_bad_arguments():
    with pytest.raises(ConfigError, match="Valid choices: F0"):
        simulate_exam(1, "F5")
    with pytest.raises(ConfigError, match="siemens"):
        simulate_exam(1, "F0", vendor="philips")
    with pytest.raises(ConfigError, match="independent"):
        simulate_exam(1, "F0", variant="other")
