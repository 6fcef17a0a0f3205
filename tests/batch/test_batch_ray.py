"""`liverfib batch` as a user runs it (the console script): a worker killed mid-run, a 2-node cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

import liverfib  # noqa: E402
from liverfib.pipeline.batch import read_batch_table  # noqa: E402

LIVERFIB = Path(sys.executable).with_name("liverfib")


def _env() -> dict[str, str]:
    """The test's environment with this source tree first on the path (Ray workers inherit it)."""
    src = str(Path(liverfib.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
            "RAY_USAGE_STATS_ENABLED": "0"}


def _images(root: Path, n: int, make_us_image) -> Path:
    from PIL import Image

    rng = np.random.default_rng(3)
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(make_us_image(rng, "AB"[i % 2])).save(root / f"u{i:03d}.png")
    return root


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _actor_pids(pid: int) -> list[int]:
    """PIDs of the Ray Data actors (process title ``ray::MapWorker(...)``) started by job ``pid``."""
    out = []
    for p in _descendants(pid):
        try:
            if b"MapWorker" in Path(f"/proc/{p}/cmdline").read_bytes():
                out.append(p)
        except OSError:
            continue
    return out


def _assert_each_input_once_ok(src: Path, out: Path) -> list[dict]:
    rows = read_batch_table(out).to_pylist()
    assert sorted(r["path"] for r in rows) == sorted(str(p.absolute()) for p in src.iterdir())
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows if r["status"] != "ok"][:3]
    return rows


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the actor's PID through /proc")
def test_worker_killed_mid_run_job_still_completes_every_row_once(tmp_path: Path, make_us_image) -> None:
    src = _images(tmp_path / "in", 96, make_us_image)
    out = tmp_path / "out"
    cmd = [str(LIVERFIB), "batch", str(src), "--task", "us-staging", "--out", str(out), "--workers", "2",
           "--batch-size", "4", "--shard-size", "8", "--json"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.time() + 400
    while proc.poll() is None and time.time() < deadline:
        actors = _actor_pids(proc.pid)
        if actors and list((out / "rows").glob("part-*.parquet")):  # mid-run: a shard is already committed
            killed = actors[0]
            os.kill(killed, signal.SIGKILL)
            break
        time.sleep(0.2)
    stdout, stderr = proc.communicate(timeout=400)
    assert killed is not None, "the job ended before a worker could be killed; make it longer"
    assert proc.returncode == 0, stderr[-2000:]
    summary = json.loads(stdout)
    assert (summary["total"], summary["ok"], summary["error"]) == (96, 96, 0)
    _assert_each_input_once_ok(src, out)


def test_local_two_node_cluster_through_address(tmp_path: Path, make_us_image) -> None:
    from ray.cluster_utils import Cluster

    src = _images(tmp_path / "in", 24, make_us_image)
    out = tmp_path / "out"
    old_env = dict(os.environ)
    os.environ.update(_env())  # the nodes' workers import this liverfib
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        address = cluster.address
        proc = subprocess.run(
            [str(LIVERFIB), "batch", str(src), "--task", "us-staging", "--out", str(out), "--address",
             address, "--batch-size", "4", "--json"],
            env=_env(), capture_output=True, text=True, timeout=400,
        )
    finally:
        cluster.shutdown()
        os.environ.clear()
        os.environ.update(old_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    # 2 workers of 0.9 CPU each on two 1-CPU nodes: one worker per node, so both nodes ran the model
    assert summary["workers"] == 2 and address in summary["ray_address"]
    assert (summary["total"], summary["ok"], summary["error"]) == (24, 24, 0)
    _assert_each_input_once_ok(src, out)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the job's processes through /proc")
def test_job_killed_then_rerun_gives_every_input_exactly_once(tmp_path: Path, make_us_image) -> None:
    src = _images(tmp_path / "in", 64, make_us_image)
    out = tmp_path / "out"
    cmd = [str(LIVERFIB), "batch", str(src), "--task", "us-staging", "--out", str(out), "--workers", "2",
           "--batch-size", "4", "--shard-size", "8", "--json"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 400
    while proc.poll() is None and time.time() < deadline and len(list((out / "rows").glob("part-*.parquet"))) < 2:
        time.sleep(0.1)
    family = _descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole job: driver, Ray's processes, workers
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate(timeout=60)
    committed = len(read_batch_table(out))
    assert 0 < committed < 64, "the job must be killed mid-run"
    assert all(f.name.startswith("part-") for f in (out / "rows").glob("*.parquet"))  # only whole shards
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["skipped"] == committed and summary["ok"] == 64 - committed
    assert not list(out.rglob("*.tmp"))  # a temporary left by the kill is cleared by the next run
    _assert_each_input_once_ok(src, out)
