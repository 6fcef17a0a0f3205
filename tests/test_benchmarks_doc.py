"""BENCHMARKS.md tables agree with benchmarks/results/*.json, and every result JSON is cited."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "bench_tables.py"


def _check(doc: Path, results: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "--check", "--doc", str(doc), "--results", str(results)],
                          capture_output=True, text=True)


def test_benchmarks_md_matches_result_jsons():
    proc = _check(ROOT / "BENCHMARKS.md", ROOT / "benchmarks" / "results")
    assert proc.returncode == 0, proc.stderr


def test_check_fails_when_a_json_changes(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", results)
    doc = tmp_path / "BENCHMARKS.md"
    shutil.copy(ROOT / "BENCHMARKS.md", doc)
    victim = sorted(results.glob("*.json"))[0]
    record = json.loads(victim.read_text())
    name = next(iter(record["metrics"]))
    record["metrics"][name]["value"] += 0.123
    victim.write_text(json.dumps(record))
    proc = _check(doc, results)
    assert proc.returncode == 1 and "differ" in proc.stderr
