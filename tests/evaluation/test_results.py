"""The one result-JSON shape: required keys, metric shape, test-scoring counter."""

from __future__ import annotations

import json

import pytest

from liverfib.evaluation.results import REQUIRED_KEYS, metric, read_result, write_result


def test_write_result_shape_and_test_counter(tmp_path):
    split = tmp_path / "split.csv"
    split.write_text("path,subset\na.png,test\n")
    kwargs = dict(
        title="t", metrics={"accuracy": metric(0.5, (0.4, 0.6))}, n=10, unit="image",
        command="x", synthetic=False, split_file=split, subset="test", results_dir=tmp_path,
    )
    path = write_result("r", **kwargs)
    record = read_result(path)
    assert set(REQUIRED_KEYS) <= set(record)
    assert record["metrics"]["accuracy"] == {"value": 0.5, "ci": [0.4, 0.6]}
    assert record["split"]["sha256"] and len(record["split"]["sha256"]) == 64
    assert record["test_scored_count"] == 1
    write_result("r", **kwargs)  # scoring the same test subset again is counted
    assert json.loads(path.read_text())["test_scored_count"] == 2


def test_write_result_rejects_bare_numbers(tmp_path):
    with pytest.raises(ValueError, match="accuracy"):
        write_result("r", title="t", metrics={"accuracy": 0.5}, n=1, unit="image", command="x",
                     synthetic=False, results_dir=tmp_path)
