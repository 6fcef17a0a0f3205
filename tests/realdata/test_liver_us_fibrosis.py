"""Real data from ../shared: the audit must find the set's true structure; the shipped model must run.

Skipped (with the reason) only where ../shared/data is absent.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "liver-us-fibrosis"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}"),
]


@pytest.fixture(scope="module")
def audit():
    from liverfib.dataset import audit_folder

    t0 = time.perf_counter()
    result = audit_folder(DATA)
    return result, time.perf_counter() - t0


def test_audit_finds_the_copies_and_the_confounding(audit) -> None:
    result, seconds = audit
    s = result.summary
    assert s["n_files"] == 5020
    assert s["n_unreadable"] == 0
    assert s["n_unique_exact"] == 1224  # README of the set: only 1224 distinct images
    assert s["n_link_files"] == 5020 - 1224
    assert {k: v["files"] for k, v in s["labels"].items()} == {
        "F0": 1658,
        "F1": 705,
        "F2": 635,
        "F3": 678,
        "F4": 1344,
    }
    assert 900 < s["n_clusters"] < 1224
    assert s["cross_label_conflicts"] == []
    by_fp = {src["fingerprint"]: src["distinct_per_label"] for src in s["sources"]}
    assert by_fp["JPEG 640x480 L 8-bit"] == {"F0": 248, "F1": 96, "F2": 0, "F3": 0, "F4": 138}
    assert by_fp["PNG 449x464 L 8-bit"] == {"F0": 0, "F1": 141, "F2": 247, "F3": 247, "F4": 107}
    assert s["source_label_cramers_v"] > 0.7 and s["confounding_warning"]
    assert seconds < 120


def test_grouped_split_keeps_clusters_apart(audit) -> None:
    from liverfib.dataset import make_split

    rows = make_split(audit[0].files, seed=0)
    side: dict[str, str] = {}
    for r in rows:
        assert side.setdefault(r["cluster"], r["split"]) == r["split"]
    shares = {p: sum(r["split"] == p for r in rows) / len(rows) for p in ("train", "val", "test")}
    assert 0.1 < shares["test"] < 0.2 and 0.1 < shares["val"] < 0.2
