"""Dataset audit on a synthetic labelled folder with copies, link stubs, near-duplicates, a corrupt
file and a device confounded with the label."""

from __future__ import annotations

import itertools
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from liverfib.dataset import audit_folder, audit_items, cramers_v
from liverfib.dataset.audit import AUDIT_JSON_KEYS, SIMILARITY_BANDS, GroupingRule
from liverfib.dataset.similarity import near_pairs
from liverfib.errors import InputError
from liverfib.io import LabelledItem


@pytest.fixture(scope="module")
def confounded(tmp_path_factory, build_dataset):
    ds = build_dataset(tmp_path_factory.mktemp("confounded") / "us")
    return ds, audit_folder(ds.root)


@pytest.fixture(scope="module")
def balanced(tmp_path_factory, build_dataset):
    ds = build_dataset(tmp_path_factory.mktemp("balanced") / "us", balanced=True)
    return ds, audit_folder(ds.root)


def _rows(result) -> dict[str, dict]:
    return {row["path"]: row for row in result.files}


# ------------------------------------------------------------------------------------ counts
def test_summary_has_the_stable_keys(confounded) -> None:
    _, result = confounded
    assert AUDIT_JSON_KEYS <= set(result.summary)


def test_every_file_is_counted(confounded) -> None:
    ds, result = confounded
    s = result.summary
    assert s["n_files"] == ds.n_files == 22
    assert set(s["labels"]) == {"F0", "F1", "F2", "F3", "F4"}
    assert sum(d["files"] for d in s["labels"].values()) == ds.n_files - len(ds.corrupt)


def test_corrupt_file_is_listed_and_the_rest_processed(confounded) -> None:
    ds, result = confounded
    s = result.summary
    assert s["n_unreadable"] == 1
    assert [u["path"] for u in s["unreadable"]] == ds.corrupt
    assert "corrupt" in s["unreadable"][0]["error"]
    listed = set(_rows(result))
    assert listed == set(ds.label) - set(ds.corrupt)
    for rel, row in _rows(result).items():
        assert row["label"] == ds.label[rel]
        assert row["label"] == rel.split("/")[0]


def test_exact_copies_and_link_stubs_are_grouped(confounded) -> None:
    ds, result = confounded
    s = result.summary
    found = [set(g) for g in s["exact_duplicate_groups"]]
    assert sorted(found, key=sorted) == sorted(ds.exact_groups, key=sorted)
    assert s["n_exact_duplicate_groups"] == 3
    assert s["n_link_files"] == 2  # the two text stubs
    rows = _rows(result)
    for group in ds.exact_groups:
        assert len({rows[p]["sha256"] for p in group}) == 1
        assert len({rows[p]["cluster"] for p in group}) == 1


def test_unique_contents_are_counted(confounded) -> None:
    ds, result = confounded
    s = result.summary
    assert s["n_unique_exact"] == ds.n_unique_exact == 17
    assert s["n_unique_pixels"] == 17
    assert len({row["sha256"] for row in result.files}) == 17


def test_distinct_files_keeps_the_first_row_of_each_content(confounded) -> None:
    _, result = confounded
    distinct = result.distinct_files()
    assert len(distinct) == len({row["sha256"] for row in distinct}) == 17
    first = {}
    for row in result.files:
        first.setdefault(row["sha256"], row["path"])
    assert [row["path"] for row in distinct] == list(first.values())


def test_link_stub_resolves_to_its_target_hash(confounded) -> None:
    ds, result = confounded
    rows = _rows(result)
    assert (ds.root / "F0/f0_0_link.jpg").read_bytes() == b"f0_0.jpg"
    assert rows["F0/f0_0_link.jpg"]["sha256"] == rows["F0/f0_0.jpg"]["sha256"]


# --------------------------------------------------------------------------- near-duplicates
def test_reencoded_and_brightened_versions_cluster_with_their_original(confounded) -> None:
    ds, result = confounded
    s = result.summary
    assert len(s["near_duplicate_clusters"]) == 1
    cluster = s["near_duplicate_clusters"][0]
    assert set(cluster["files"]) == ds.near_group
    assert cluster["n_distinct"] == 3
    assert cluster["labels"] == ["F0"]


def test_different_scans_are_not_clustered(confounded) -> None:
    ds, result = confounded
    rows = _rows(result)
    clusters = [rows[p]["cluster"] for p in ds.originals]
    assert len(set(clusters)) == len(ds.originals) == 15
    assert result.summary["n_clusters"] == ds.n_clusters == 15


def test_per_label_counts(confounded) -> None:
    _, result = confounded
    f0 = result.summary["labels"]["F0"]
    # f0_0 (+copy, +stub), f0_1 (+q90, +bright), f0_2
    assert f0 == {"files": 7, "unique_clusters": 3, "distinct_images": 5}
    assert result.summary["labels"]["F1"] == {"files": 3, "unique_clusters": 3, "distinct_images": 3}
    assert result.summary["labels"]["F2"] == {"files": 5, "unique_clusters": 3, "distinct_images": 3}


def test_threshold_one_keeps_reencodes_apart(confounded) -> None:
    ds, _ = confounded
    s = audit_folder(ds.root, grouping=GroupingRule(pixel=1.0, use_cnn=False)).summary
    assert s["n_clusters"] == 17
    assert s["near_duplicate_clusters"] == []


def test_true_resize_to_another_pixel_grid_clusters(tmp_path: Path, make_us_image, us_frame) -> None:
    import cv2

    rng = np.random.default_rng(11)
    scans = [make_us_image(rng, "A") for _ in range(3)]
    for k, img in enumerate(scans):
        (tmp_path / f"s{k}.jpg").write_bytes(us_frame.encode(img, "JPEG"))
    big = cv2.resize(scans[0], (163, 122), interpolation=cv2.INTER_AREA)  # +2 %
    (tmp_path / "s0_resized.jpg").write_bytes(us_frame.encode(big, "JPEG", quality=90))
    items = [LabelledItem(p, p.name, "F1") for p in sorted(tmp_path.glob("*.jpg"))]
    calls: list[tuple[int, int]] = []

    result = audit_items(items, progress=lambda done, total: calls.append((done, total)))

    rows = _rows(result)
    assert rows["s0.jpg"]["cluster"] == rows["s0_resized.jpg"]["cluster"]
    assert len({rows[f"s{k}.jpg"]["cluster"] for k in range(3)}) == 3
    assert rows["s0.jpg"]["source"] != rows["s0_resized.jpg"]["source"]  # another pixel grid
    assert calls == [(k, 4) for k in range(1, 5)]


# ---------------------------------------------------------------------------- label conflicts
@pytest.mark.parametrize("how", ["copy", "stub", "reencode"])
def test_same_scan_under_two_labels_is_a_conflict(tmp_path: Path, build_dataset, us_frame, how: str) -> None:
    from PIL import Image as PILImage

    ds = build_dataset(tmp_path / "us")
    src = ds.root / "F3/f3_0.png"
    dst = ds.root / "F4/dup.png"
    if how == "copy":
        shutil.copyfile(src, dst)
    elif how == "stub":
        dst.write_text("../F3/f3_0.png")
    else:
        dst = ds.root / "F4/dup.jpg"
        dst.write_bytes(us_frame.encode(np.asarray(PILImage.open(src)), "JPEG", quality=90))

    conflicts = audit_folder(ds.root).summary["cross_label_conflicts"]

    assert len(conflicts) == 1
    assert conflicts[0]["labels"] == ["F3", "F4"]
    assert set(conflicts[0]["files"]) == {"F3/f3_0.png", f"F4/{dst.name}"}


def test_no_conflict_in_a_clean_dataset(confounded) -> None:
    assert confounded[1].summary["cross_label_conflicts"] == []


# ------------------------------------------------------------------------------- confounding
def test_sources_follow_the_devices(confounded) -> None:
    ds, result = confounded
    sources = result.summary["sources"]
    assert {s["fingerprint"] for s in sources} == {"JPEG 160x120 L 8-bit", "PNG 112x116 L 8-bit"}
    devices_of_source: dict[str, set[str]] = {}
    for rel, row in _rows(result).items():
        devices_of_source.setdefault(row["source"], set()).add(ds.device[rel])
    assert sorted(devices_of_source.values(), key=sorted) == [{"A"}, {"B"}]
    by_fp = {s["fingerprint"]: s for s in sources}
    jpeg, png = by_fp["JPEG 160x120 L 8-bit"], by_fp["PNG 112x116 L 8-bit"]
    assert jpeg["distinct_per_label"] == {"F0": 5, "F1": 3, "F2": 0, "F3": 0, "F4": 0}
    assert png["n_files"] == 11 and png["n_distinct"] == 9
    assert jpeg["background_level_median"] == 0.0 and png["background_level_median"] == 10.0
    assert jpeg["fan_top_width_fraction_median"] < png["fan_top_width_fraction_median"]


def test_device_confounded_with_label_warns(confounded) -> None:
    _, result = confounded
    s = result.summary
    assert s["source_label_cramers_v"] > 0.5
    assert s["source_label_cramers_v"] == pytest.approx(1.0)  # device determines F0-F1 vs F2-F4
    assert s["confounding_warning"] is True
    assert "WARNING" in s["verdict"]


def test_balanced_devices_do_not_warn(balanced) -> None:
    ds, result = balanced
    s = result.summary
    # 12 JPEG contents (10 scans + 2 near-duplicates in F0) and 10 PNG, 4-5 per label
    distinct_label = {}
    for row in result.files:
        distinct_label.setdefault(row["sha256"], (row["source"], row["label"]))
    src, lab = zip(*distinct_label.values(), strict=True)
    assert s["source_label_cramers_v"] == pytest.approx(cramers_v(list(src), list(lab)), abs=1e-4)
    assert s["source_label_cramers_v"] < 0.3
    assert s["confounding_warning"] is False
    assert "WARNING" not in s["verdict"]


def test_sources_are_named_largest_first(balanced) -> None:
    sources = balanced[1].summary["sources"]
    assert [s["source"] for s in sources] == ["S1", "S2"]
    assert [s["n_distinct"] for s in sources] == [12, 10]


def test_tied_sources_are_named_in_a_reproducible_order(tmp_path: Path, make_us_image, us_frame) -> None:
    """Ties are broken by fingerprint, not by set iteration order (which changes with
    PYTHONHASHSEED and would rename sources, and so change the split strata, between runs)."""
    import cv2

    rng = np.random.default_rng(0)
    items = []
    for k, (kind, fmt) in enumerate([("A", "PNG"), ("B", "JPEG"), ("A", "JPEG"), ("B", "PNG")]):
        img = make_us_image(rng, kind)
        if k >= 2:  # two more pixel grids: four sources of one image each
            img = cv2.resize(img, (img.shape[1] + 8, img.shape[0] + 8), interpolation=cv2.INTER_AREA)
        path = tmp_path / f"s{k}.{fmt.lower()}"
        path.write_bytes(us_frame.encode(img, fmt))
        items.append(LabelledItem(path, path.name, f"F{k % 2}"))

    sources = audit_items(items).summary["sources"]

    fingerprints = [s["fingerprint"] for s in sources]
    assert len(fingerprints) == 4
    assert fingerprints == sorted(fingerprints)
    assert [s["source"] for s in sources] == ["S1", "S2", "S3", "S4"]


# ------------------------------------------------------------------------------- Cramér's V
def test_cramers_v_matches_hand_computation() -> None:
    # table [[2, 1], [0, 3]]: expected [[1, 2], [1, 2]], chi2 = 1 + 1/2 + 1 + 1/2 = 3, n = 6
    a = ["x", "x", "x", "y", "y", "y"]
    b = ["p", "p", "q", "q", "q", "q"]
    assert cramers_v(a, b) == pytest.approx(math.sqrt(3 / 6))


def test_cramers_v_three_by_two_hand_computation() -> None:
    # rows u, v, w; cols p, q: [[4, 0], [0, 4], [2, 2]]; n = 12, expected 2 everywhere
    # chi2 = 4 * (2^2 / 2) + 0 = 8 (w row matches expectation); V = sqrt(8 / (12 * 1))
    a = ["u"] * 4 + ["v"] * 4 + ["w"] * 4
    b = ["p"] * 4 + ["q"] * 4 + ["p", "p", "q", "q"]
    assert cramers_v(a, b) == pytest.approx(math.sqrt(8 / 12))


def test_cramers_v_limits() -> None:
    a = ["s1", "s2"] * 10
    assert cramers_v(a, a) == pytest.approx(1.0)
    assert cramers_v(a, ["F0"] * 20) == 0.0  # one category: no association measurable
    assert cramers_v(["s1", "s1", "s2", "s2"], ["F0", "F1", "F0", "F1"]) == pytest.approx(0.0)
    assert cramers_v(a, b=list(reversed(a))) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------ errors
def test_audit_folder_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        audit_folder(tmp_path / "nope")
    assert str(exc.value) == f"{tmp_path / 'nope'}: expected a dataset folder, found nothing"


def test_audit_folder_empty(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        audit_folder(tmp_path)
    assert str(exc.value) == (
        f"{tmp_path}: expected one sub-folder per label (e.g. F0..F4) or --labels CSV; found no sub-folders"
    )


def test_audit_folder_without_sub_folders(tmp_path: Path, make_us_image, us_frame) -> None:
    img = make_us_image(np.random.default_rng(0), "A")
    (tmp_path / "scan.jpg").write_bytes(us_frame.encode(img, "JPEG"))
    with pytest.raises(InputError) as exc:
        audit_folder(tmp_path)
    assert str(exc.value) == (
        f"{tmp_path}: expected one sub-folder per label (e.g. F0..F4) or --labels CSV; found no sub-folders"
    )


def test_audit_folder_sub_folders_without_images(tmp_path: Path) -> None:
    (tmp_path / "F0").mkdir()
    (tmp_path / "F1").mkdir()
    (tmp_path / "F1" / "notes.txt").write_text("x")
    with pytest.raises(InputError) as exc:
        audit_folder(tmp_path)
    assert str(exc.value) == f"{tmp_path}: sub-folders F0, F1 hold no image files"


def test_only_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "F0").mkdir()
    (tmp_path / "F0" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(InputError, match="no readable image in the collection"):
        audit_folder(tmp_path)


def test_audit_items_rejects_empty_and_bad_threshold(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="the collection is empty"):
        audit_items([])
    for bad in (0.0, 1.5):
        with pytest.raises(InputError, match="threshold pixel must be in"):
            GroupingRule(pixel=bad)
        with pytest.raises(InputError, match="threshold cnn must be in"):
            GroupingRule(cnn=bad)


def test_dangling_stub_is_read_as_a_file_not_followed(tmp_path: Path, make_us_image, us_frame) -> None:
    """A stub naming a missing file is just a tiny non-image file: unreadable, not a crash."""
    (tmp_path / "F0").mkdir()
    img = make_us_image(np.random.default_rng(0), "B")
    (tmp_path / "F0" / "a.png").write_bytes(us_frame.encode(img, "PNG"))
    (tmp_path / "F0" / "b.png").write_text("missing.png")
    s = audit_folder(tmp_path).summary
    assert s["n_unreadable"] == 1 and s["unreadable"][0]["path"] == "F0/b.png"
    assert s["n_link_files"] == 0


def test_pairs_of_all_distinct_scans_stay_below_threshold(confounded) -> None:
    """The margin behind 'different images are not clustered': correlations well below 0.9."""
    ds, result = confounded
    rows = _rows(result)
    desc = [result.fingerprints[rows[p]["sha256"]].descriptor for p in ds.originals]
    worst = max(float(a @ b) for a, b in itertools.combinations(desc, 2))
    assert worst < 0.75


# ------------------------------------------------------------------ same-scan frames (issue 16)
def _moved_frame(img: np.ndarray, kind: str, shift: float, rng: np.random.Generator, us_frame) -> np.ndarray:
    """The same scan after a small probe movement: content shifted by ``shift`` px, fresh speckle."""
    import cv2

    fan = us_frame.sector_mask(kind)
    warp = np.float32([[1, 0, shift], [0, 1, shift / 2]])
    moved = cv2.warpAffine(img.astype(np.float32), warp, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)
    moved = moved * (1.0 + 0.25 * rng.normal(size=img.shape)).astype(np.float32)
    return np.where(fan, np.clip(moved, 25, 235), img).astype(np.uint8)


@pytest.fixture(scope="module")
def moved_scan(tmp_path_factory, make_us_image, us_frame):
    """Six distinct scans plus one frame of scan 0 moved by 3 px (pixel correlation ~0.86: the band
    the old 0.90 rule missed)."""
    root = tmp_path_factory.mktemp("moved") / "us"
    rng = np.random.default_rng(5)
    scans = [make_us_image(rng, "A") for _ in range(6)]
    frame = _moved_frame(scans[0], "A", 3.0, rng, us_frame)
    for k, img in enumerate(scans):
        folder = root / ("F0" if k % 2 == 0 else "F1")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"s{k}.png").write_bytes(us_frame.encode(img, "PNG"))
    (root / "F0" / "s0_moved.png").write_bytes(us_frame.encode(frame, "PNG"))
    return root


def test_moved_frame_of_one_scan_is_grouped_with_it(moved_scan) -> None:
    result = audit_folder(moved_scan)
    rows = _rows(result)
    d0 = result.fingerprints[rows["F0/s0.png"]["sha256"]].descriptor
    d1 = result.fingerprints[rows["F0/s0_moved.png"]["sha256"]].descriptor
    assert 0.85 <= float(d0 @ d1) < 0.90  # the band that leaked under the old rule
    assert rows["F0/s0.png"]["cluster"] == rows["F0/s0_moved.png"]["cluster"]
    others = {rows[f"F{k % 2}/s{k}.png"]["cluster"] for k in range(1, 6)}
    assert len(others) == 5 and rows["F0/s0.png"]["cluster"] not in others
    old = audit_folder(moved_scan, grouping=GroupingRule(pixel=0.90, use_cnn=False))
    old_rows = _rows(old)
    assert old_rows["F0/s0.png"]["cluster"] != old_rows["F0/s0_moved.png"]["cluster"]


def test_split_keeps_a_moved_frame_with_its_scan(moved_scan) -> None:
    from liverfib.dataset import make_folds

    rows = make_folds(audit_folder(moved_scan).files, folds=3, seed=0)
    side = {r["path"]: r["split"] for r in rows}
    assert side["F0/s0.png"] == side["F0/s0_moved.png"]


def test_audit_reports_pairs_per_band_and_largest_cluster(moved_scan) -> None:
    s = audit_folder(moved_scan).summary
    n = s["n_unique_pixels"]
    assert set(s["similarity_bands"]) == {"pixel", "phash", "cnn"}
    for name, bands in s["similarity_bands"].items():
        assert len(bands) == len(SIMILARITY_BANDS[name]) + 1
        assert sum(b["pairs"] for b in bands) == n * (n - 1) // 2
    pixel = {tuple(b["band"]): b["pairs"] for b in s["similarity_bands"]["pixel"]}
    assert pixel[(0.85, 0.9)] == 1  # exactly the moved frame and its scan
    assert s["largest_cluster"] == 2
    assert "pixel >= 0.85" in s["grouping"]


def test_grouping_rule_links() -> None:
    """The link rule on hand-made similarities: pixel alone, CNN with pixel support, both moderate."""

    def unit(v: list[float]) -> np.ndarray:
        v = np.asarray(v, np.float64)
        return v / np.linalg.norm(v)

    def linked(pixel: float, cnn: float, rule: GroupingRule | None = None) -> bool:
        # two unit vectors with the given cosine
        desc = np.stack([unit([1, 0]), unit([pixel, np.sqrt(1 - pixel**2)])]).astype(np.float32)
        emb = np.stack([unit([1, 0]), unit([cnn, np.sqrt(1 - cnn**2)])]).astype(np.float32)
        pairs, _ = near_pairs(desc, np.zeros((2, 64), bool), emb, rule or GroupingRule())
        return len(pairs) == 1

    assert linked(0.86, 0.0)
    assert not linked(0.84, 0.0)
    assert linked(0.60, 0.83)
    assert not linked(0.45, 0.95)  # CNN cosine alone needs some pixel support
    assert linked(0.81, 0.79)
    assert not linked(0.81, 0.77)
    assert not linked(0.79, 0.81)
    assert not linked(0.81, 0.79, GroupingRule(use_cnn=True, joint_cnn=0.9))


def test_perceptual_hash_survives_reencoding_not_a_new_scan(confounded) -> None:
    from liverfib.dataset.fingerprint import phash_similarity

    ds, result = confounded
    rows = _rows(result)
    h = {p: result.fingerprints[rows[p]["sha256"]].phash for p in ds.near_group}
    first, *rest = sorted(h)
    for p in rest:
        assert phash_similarity(h[first][None], h[p][None])[0, 0] >= 0.9
    distinct = [result.fingerprints[rows[p]["sha256"]].phash for p in ds.originals]
    sims = phash_similarity(np.stack(distinct), np.stack(distinct))
    assert sims[np.triu_indices(len(distinct), 1)].max() < 0.9
