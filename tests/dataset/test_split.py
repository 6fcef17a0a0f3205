"""Leakage-free splits: clusters (and patients) never straddle train/val/test or folds."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liverfib.dataset.split import (
    SPLIT_COLUMNS,
    assign_groups,
    make_folds,
    make_split,
    read_split_csv,
    write_split_csv,
)
from liverfib.errors import ConfigError, InputError

pytestmark = pytest.mark.filterwarnings("ignore:The least populated class:UserWarning")

LABELS = ["F0", "F1", "F2", "F3", "F4"]
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def collections(draw, min_clusters: int = 12, max_clusters: int = 60, patients: bool = True) -> list[dict]:
    """Audit-like file rows: clusters of 1-4 files, one label and source per cluster, and
    (optionally) patients shared by several clusters."""
    n = draw(st.integers(min_clusters, max_clusters))
    n_patients = draw(st.integers(max(1, n // 3), n)) if patients else 0
    files = []
    for c in range(n):
        size = draw(st.integers(1, 4))
        label = draw(st.sampled_from(LABELS))
        source = draw(st.sampled_from(["S1", "S2", "S3"]))
        patient = draw(st.one_of(st.none(), st.integers(0, n_patients - 1))) if patients else None
        for j in range(size):
            files.append(
                {
                    "path": f"{label}/c{c:03d}_{j}.png",
                    "label": label,
                    "patient": None if patient is None else f"P{patient}",
                    "cluster": f"c{c:05d}",
                    "source": source,
                    "sha256": f"{c}-{j}",
                }
            )
    return files


fractions = st.one_of(st.just(0.0), st.floats(0.08, 0.3))


def _sides(rows: list[dict], key: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        out[row[key]].add(row["split"])
    return out


# ------------------------------------------------------------------------------ make_split
@SETTINGS
@given(files=collections(), val=fractions, test=fractions, seed=st.integers(0, 2**16))
def test_split_never_puts_a_group_on_two_sides(files: list[dict], val: float, test: float, seed: int) -> None:
    try:
        rows = make_split(files, val=val, test=test, seed=seed)
    except InputError as exc:  # legitimately too few independent groups for the fractions asked
        assert "independent groups" in str(exc)
        assert len(set(assign_groups(files))) < 20
        return

    assert [r["path"] for r in rows] == [f["path"] for f in files]  # every file, in order
    assert {r["split"] for r in rows} <= {"train", "val", "test"}
    assert all(len(s) == 1 for s in _sides(rows, "group").values())
    assert all(len(s) == 1 for s in _sides(rows, "cluster").values())
    by_patient: dict[str, set[str]] = defaultdict(set)
    for f, r in zip(files, rows, strict=True):
        if f["patient"]:
            by_patient[f["patient"]].add(r["split"])
    assert all(len(s) == 1 for s in by_patient.values())
    splits = {r["split"] for r in rows}
    assert ("val" in splits) == (val > 0)
    assert ("test" in splits) == (test > 0)
    assert "train" in splits
    assert make_split(files, val=val, test=test, seed=seed) == rows  # reproducible


@SETTINGS
@given(
    files=collections(min_clusters=80, max_clusters=150, patients=False),
    val=st.floats(0.08, 0.3),
    test=st.floats(0.08, 0.3),
    seed=st.integers(0, 2**16),
)
def test_split_fractions_are_roughly_respected(files: list[dict], val: float, test: float, seed: int) -> None:
    rows = make_split(files, val=val, test=test, seed=seed)
    n = len(rows)
    assert sum(r["split"] == "test" for r in rows) / n == pytest.approx(test, abs=0.08)
    assert sum(r["split"] == "val" for r in rows) / n == pytest.approx(val, abs=0.08)


def test_split_output_columns() -> None:
    files = [{"path": f"p{i}", "label": LABELS[i % 5], "cluster": f"c{i}", "source": "S1"} for i in range(40)]
    rows = make_split(files, seed=3)
    assert set(rows[0]) == set(SPLIT_COLUMNS)
    assert make_split(files, seed=4) != rows  # the seed matters


def test_patient_column_merges_clusters() -> None:
    files = [
        {"path": "a", "label": "F0", "cluster": "c1", "patient": "P1"},
        {"path": "b", "label": "F0", "cluster": "c2", "patient": "P1"},
        {"path": "c", "label": "F1", "cluster": "c2", "patient": "P2"},
        {"path": "d", "label": "F1", "cluster": "c3", "patient": "P2"},  # c1-c2-c3 through P1, P2
        {"path": "e", "label": "F2", "cluster": "c4", "patient": None},
        {"path": "f", "label": "F2", "cluster": "c4", "patient": ""},
        {"path": "g", "label": "F3", "cluster": "c5", "patient": "P3"},
    ]
    assert assign_groups(files) == ["g00000"] * 4 + ["g00001"] * 2 + ["g00002"]
    no_patients = [{k: v for k, v in f.items() if k != "patient"} for f in files]
    assert len(set(assign_groups(no_patients))) == 5


def test_patient_spanning_clusters_stays_on_one_side() -> None:
    # 30 patients with 3 unrelated scans each: clusters alone would scatter a patient
    files = [
        {
            "path": f"p{p}_{k}",
            "label": LABELS[p % 5],
            "cluster": f"c{p}_{k}",
            "patient": f"P{p}",
            "source": "S1",
        }
        for p in range(30)
        for k in range(3)
    ]
    for seed in range(3):
        rows = make_split(files, val=0.2, test=0.2, seed=seed)
        by_patient = defaultdict(set)
        for f, r in zip(files, rows, strict=True):
            by_patient[f["patient"]].add(r["split"])
        assert all(len(s) == 1 for s in by_patient.values())
        assert len({r["group"] for r in rows}) == 30


def test_naive_split_leaks_copies_and_grouped_does_not() -> None:
    files = [
        {"path": f"c{c}_{k}", "label": LABELS[c % 5], "cluster": f"c{c:03d}", "source": "S1"}
        for c in range(40)
        for k in range(5)
    ]
    naive = make_split(files, val=0.15, test=0.15, seed=0, naive=True)
    grouped = make_split(files, val=0.15, test=0.15, seed=0)
    leaking = [c for c, s in _sides(naive, "cluster").items() if len(s) > 1]
    assert len(leaking) > 20  # most 5-copy clusters straddle a boundary
    assert all(len(s) == 1 for s in _sides(grouped, "cluster").values())
    assert len({r["group"] for r in naive}) == len(files)  # naive: every file its own group


def _small_balanced() -> list[dict]:
    """40 files in 20 two-copy clusters over 10 label×source strata of 4 files each."""
    return [
        {"path": f"p{i}", "label": LABELS[(i // 2) % 5], "cluster": f"c{i // 2:03d}", "source": f"S{i // 20}"}
        for i in range(40)
    ]


def test_small_set_with_many_small_strata_still_splits() -> None:
    """Regression: every stratum smaller than the number of folds made StratifiedGroupKFold raise
    a bare ValueError (a traceback from 'liverfib split' on a small device-balanced set)."""
    files = _small_balanced()
    for seed in range(3):
        rows = make_split(files, val=0.15, test=0.15, seed=seed)
        assert {r["split"] for r in rows} == {"train", "val", "test"}
        assert all(len(s) == 1 for s in _sides(rows, "cluster").values())
        folds = make_folds(files, folds=5, seed=seed)
        assert {r["split"] for r in folds} == {f"fold{k}" for k in range(5)}
        assert all(len(s) == 1 for s in _sides(folds, "cluster").values())


@pytest.mark.parametrize(
    ("val", "test"), [(1.0, 0.1), (-0.1, 0.1), (0.1, -0.1), (0.5, 0.5), (0.2, 1.0), (0.6, 0.5)]
)
def test_bad_fractions_are_config_errors(val: float, test: float) -> None:
    files = [{"path": "a", "label": "F0", "cluster": "c1"}]
    with pytest.raises(ConfigError, match="--val-fraction and --test-fraction must be fractions"):
        make_split(files, val=val, test=test)


def test_too_few_groups_and_no_files() -> None:
    files = [{"path": f"p{i}", "label": "F0", "cluster": f"c{i % 3}"} for i in range(30)]
    with pytest.raises(InputError, match="only 3 independent groups"):
        make_split(files, val=0.15, test=0.15)
    with pytest.raises(InputError, match="no files to split"):
        make_split([])


# ------------------------------------------------------------------------------ make_folds
@SETTINGS
@given(files=collections(), folds=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_each_cluster_is_in_exactly_one_fold(files: list[dict], folds: int, seed: int) -> None:
    n_groups = len(set(assign_groups(files)))
    if n_groups < folds:
        with pytest.raises(InputError, match="cannot make"):
            make_folds(files, folds=folds, seed=seed)
        return
    rows = make_folds(files, folds=folds, seed=seed)
    assert [r["path"] for r in rows] == [f["path"] for f in files]
    assert {r["split"] for r in rows} == {f"fold{k}" for k in range(folds)}  # none empty
    assert all(len(s) == 1 for s in _sides(rows, "cluster").values())
    assert all(len(s) == 1 for s in _sides(rows, "group").values())
    by_patient: dict[str, set[str]] = defaultdict(set)
    for f, r in zip(files, rows, strict=True):
        if f["patient"]:
            by_patient[f["patient"]].add(r["split"])
    assert all(len(s) == 1 for s in by_patient.values())


def test_bad_fold_counts() -> None:
    files = [{"path": f"p{i}", "label": "F0", "cluster": f"c{i}"} for i in range(4)]
    with pytest.raises(ConfigError, match="--folds must be at least 2, got 1"):
        make_folds(files, folds=1)
    with pytest.raises(InputError, match="only 4 independent groups; cannot make 5 folds"):
        make_folds(files, folds=5)


# ------------------------------------------------------------------------------------- CSV
def test_csv_round_trip(tmp_path: Path) -> None:
    files = [
        {
            "path": f"F{i % 5}/scan, {i} é.png",  # a comma and a non-ASCII letter need quoting/encoding
            "label": LABELS[i % 5],
            "cluster": f"c{i // 2:05d}",
            "source": "S1" if i % 3 else "S2",
            "patient": f"P{i}",  # used for grouping, not written
        }
        for i in range(40)
    ]
    rows = make_split(files, seed=1)
    out = write_split_csv(rows, tmp_path / "sub" / "split.csv")

    assert out == tmp_path / "sub" / "split.csv"
    assert [p.name for p in out.parent.iterdir()] == ["split.csv"]  # no temp file left
    back = read_split_csv(out)
    assert back == [{k: str(r[k]) for k in SPLIT_COLUMNS} for r in rows]
    with out.open(newline="") as fh:
        assert next(csv.reader(fh)) == list(SPLIT_COLUMNS)


def test_read_split_csv_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("path,label\nF0/a.png,F0\n")
    with pytest.raises(InputError) as exc:
        read_split_csv(path)
    assert str(exc.value) == (
        f"{path}: missing columns ['split']; expected path, label, group, cluster, source, split"
    )


def test_read_split_csv_minimal_columns_are_enough(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("path,label,split\nF0/a.png,F0,test\n")
    assert read_split_csv(path) == [{"path": "F0/a.png", "label": "F0", "split": "test"}]


def test_read_split_csv_missing_file_and_no_rows(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="split CSV not found; create it with 'liverfib split"):
        read_split_csv(tmp_path / "none.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(SPLIT_COLUMNS) + "\n")
    with pytest.raises(InputError, match="no rows"):
        read_split_csv(empty)
