"""Real data from ../shared: the audit must find the set's true structure; the shipped model must run.

Skipped (with the reason) only where ../shared/data is absent.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "liver-us-fibrosis"
DEMO = Path(__file__).resolve().parents[2] / "demo" / "us"

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
    # same-scan grouping (BENCHMARKS §0): about 820 clusters, none absurdly large
    assert 700 < s["n_clusters"] < 900
    assert s["largest_cluster"] <= 60
    assert len(s["cross_label_conflicts"]) <= 30
    by_fp = {src["fingerprint"]: src["distinct_per_label"] for src in s["sources"]}
    assert by_fp["JPEG 640x480 L 8-bit"] == {"F0": 248, "F1": 96, "F2": 0, "F3": 0, "F4": 138}
    assert by_fp["PNG 449x464 L 8-bit"] == {"F0": 0, "F1": 141, "F2": 247, "F3": 247, "F4": 107}
    assert s["source_label_cramers_v"] > 0.7 and s["confounding_warning"]
    assert seconds < 900  # CNN embeddings of 1224 images on 2 contended cores


def test_grouped_split_keeps_clusters_apart(audit) -> None:
    from liverfib.dataset import make_split

    rows = make_split(audit[0].files, seed=0)
    side: dict[str, str] = {}
    for r in rows:
        assert side.setdefault(r["cluster"], r["split"]) == r["split"]
    shares = {p: sum(r["split"] == p for r in rows) / len(rows) for p in ("train", "val", "test")}
    assert 0.1 < shares["test"] < 0.2 and 0.1 < shares["val"] < 0.2


def test_demo_images_come_from_the_test_split_with_no_twin_outside() -> None:
    """Every demo image is a test-split image whose whole same-scan group lies in test (issue 16)."""
    import csv

    from liverfib.dataset.fingerprint import file_sha256
    from liverfib.io import list_images, resolve_file

    split = Path(__file__).resolve().parents[2] / "benchmarks" / "splits" / "us_grouped.csv"
    rows = list(csv.DictReader(split.open()))
    group_of_sha = {file_sha256(resolve_file(DATA / r["path"])): r["group"] for r in rows}
    sides: dict[str, set[str]] = {}
    for r in rows:
        sides.setdefault(r["group"], set()).add(r["split"])
    for image in list_images(DEMO):
        group = group_of_sha[file_sha256(image)]
        assert sides[group] == {"test"}, f"{image.name}: group {group} also in {sides[group] - {'test'}}"
