"""Bounded load test of the web app on loopback (real uvicorn server, 8 concurrent clients).

200 uploads, one in ten hostile (garbage bytes, zip-slip, truncated DICOM header): every good one
must get 201 and become exactly one job, every bad one a 4xx with a reason; the server must stay
up. The second test also runs every job to completion (40 uploads; 200 with LIVERFIB_LOAD_FULL=1). Figures are written to
``$LIVERFIB_LOAD_REPORT`` (JSON) when that variable is set.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from liverfib.clinical.jobs import JobStore, JobWorker
from liverfib.clinical.processor import make_processor
from liverfib.clinical.web import WebConfig, create_app

TOKEN = "load-test-token-0123456789"


def _payloads(make_us_image, dicom_bytes: bytes, n: int) -> list[tuple[str, bytes, bool]]:
    from PIL import Image

    rng = np.random.default_rng(0)
    pngs = []
    for _ in range(8):
        buf = io.BytesIO()
        Image.fromarray(make_us_image(rng, "B")).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    slip = io.BytesIO()
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("../../evil.png", pngs[0])
    bad = [b"GIF89a-not-supported" * 10, slip.getvalue(), b"\0" * 128 + b"DICM" + b"\xff" * 64]
    out = []
    for i in range(n):
        if i % 10 == 9:
            out.append((f"bad{i}.bin", bad[(i // 10) % 3], False))
        elif i % 10 == 4:
            out.append((f"scan{i}.dcm", dicom_bytes, True))
        else:
            out.append((f"scan{i}.png", pngs[i % 8], True))
    return out


def _run_load(tmp_path: Path, payloads, port: int, serve_app, worker_models=None):  # type: ignore[no-untyped-def]
    import httpx

    store = JobStore(tmp_path / "jobs.sqlite")
    worker = None
    if worker_models is not None:
        worker = JobWorker(store, make_processor(worker_models.cfg, store=store, models=worker_models), poll_s=0.05)
        worker.start()
    app = create_app(store, WebConfig(data_dir=tmp_path, token=TOKEN), on_job=lambda _i: worker and worker.notify())
    server, thread = serve_app(app, port)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    lock = threading.Lock()
    clients: dict[int, httpx.Client] = {}

    def client() -> httpx.Client:
        with lock:
            return clients.setdefault(threading.get_ident(), httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60))

    def upload(item):  # type: ignore[no-untyped-def]
        name, data, good = item
        t0 = time.perf_counter()
        r = client().post("/api/upload", files={"file": (name, data)}, headers=headers)
        return name, good, r.status_code, r.json(), time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(upload, payloads))
    wall = time.perf_counter() - t0
    done_wall = None
    if worker is not None:
        assert worker.wait_idle(600)
        done_wall = time.perf_counter() - t0
    alive = client().get("/api/jobs?limit=5000", headers=headers)
    for c in clients.values():
        c.close()
    server.should_exit = True
    thread.join(10)
    if worker is not None:
        worker.stop()
    return store, results, wall, done_wall, alive


def _check(store: JobStore, results, alive) -> dict:  # type: ignore[no-untyped-def]
    good = [r for r in results if r[1]]
    bad = [r for r in results if not r[1]]
    assert all(r[2] == 201 for r in good), [r[:4] for r in good if r[2] != 201][:3]
    # GIF: unsupported content (415); zip-slip: bad request (400); DICM + garbage: no modality (415)
    status = {name: (415, 400, 415)[(int(name[3:-4]) // 10) % 3] for name, *_ in bad}  # as in _payloads
    assert all(r[2] == status[r[0]] and r[3].get("detail") for r in bad), [r[:4] for r in bad if r[2] != status[r[0]]][:3]
    assert alive.status_code == 200
    ids = {j["id"] for r in good for j in r[3]["jobs"]}
    assert len(ids) == len(good)  # one job per good upload ...
    assert {j.id for j in store.list(limit=5000)} == ids  # ... all persisted, none from bad uploads
    lat = np.asarray([r[4] for r in results]) * 1000
    half = 1.96 * lat.std(ddof=1) / np.sqrt(len(lat))
    return {
        "n_uploads": len(results),
        "n_good": len(good),
        "n_bad_4xx": len(bad),
        "latency_ms_mean": round(float(lat.mean()), 1),
        "latency_ms_mean_ci95": [round(float(lat.mean() - half), 1), round(float(lat.mean() + half), 1)],
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 1),
    }


def _report(stats: dict) -> None:
    print(json.dumps(stats))
    target = os.environ.get("LIVERFIB_LOAD_REPORT")
    if target:
        Path(target).write_text(json.dumps(stats, indent=2))


def test_load_200_uploads_8_concurrent(tmp_path: Path, make_us_image, us_dicom, clin) -> None:
    payloads = _payloads(make_us_image, us_dicom().read_bytes(), 200)
    store, results, wall, _, alive = _run_load(tmp_path, payloads, clin.free_port(), clin.serve_app)
    stats = _check(store, results, alive)
    stats.update(uploads_per_s=round(len(results) / wall, 1), wall_s=round(wall, 2), concurrency=8)
    _report(stats)
    assert stats["n_uploads"] == 200 and stats["n_bad_4xx"] == 20


def test_load_uploads_processed(tmp_path: Path, make_us_image, us_dicom, clin, fast_models) -> None:
    """Uploads from 8 clients with the worker on: every job ends done (good content).

    The default run (and CI) sends 40 uploads (36 good, 4 hostile), about a minute on 2 cores;
    ``LIVERFIB_LOAD_FULL=1`` sends 200 (180 jobs, many minutes).
    """
    n = 200 if os.environ.get("LIVERFIB_LOAD_FULL") else 40
    payloads = _payloads(make_us_image, us_dicom().read_bytes(), n)
    store, results, wall, done_wall, alive = _run_load(tmp_path, payloads, clin.free_port(), clin.serve_app, fast_models)
    stats = _check(store, results, alive)
    n_good = n - n // 10
    counts = store.counts()
    assert counts == {"done": n_good}, counts
    stats.update(wall_s=round(wall, 2), all_done_s=round(done_wall, 1), jobs_per_s=round(n_good / done_wall, 2))
    _report(stats)
