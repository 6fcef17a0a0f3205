"""Timing of the clinical layer on this machine (not collected by pytest: no ``test_`` prefix).

    .venv/bin/python tests/clinical/bench_clinical.py [--n 20] [--out bench_clinical.json]

Measures, each as mean with a t-based 95% CI over repetitions (synthetic device-B ultrasound
frames, 116x112, default staging model, CPU, torch threads = 1):
  * analyse: one image -> stage + SEG/SR/SC (no CAM, no PDF)
  * analyse_cam_pdf: the same with Grad-CAM and the HTML/PDF report
  * scp_round_trip: C-STORE of a US DICOM to the listener -> SEG, SR and SC received by a PACS SCP
  * deidentify: one US DICOM file de-identified (Basic Profile + fan masking)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for the synthetic data
from clinical.conftest import free_port, us_dataset  # noqa: E402
from conftest import synth_us_image  # noqa: E402


def _ci(values: list[float]) -> dict[str, float]:
    from scipy import stats

    a = np.asarray(values) * 1000.0
    half = float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else 0.0
    return {"n": len(a), "mean_ms": round(float(a.mean()), 1), "ci95_ms": [round(float(a.mean()) - half, 1), round(float(a.mean()) + half, 1)]}


def main() -> None:
    import torch

    from liverfib.clinical.jobs import JobStore, JobWorker
    from liverfib.clinical.pacs import Destination, DicomListener
    from liverfib.clinical.processor import make_processor
    from liverfib.pipeline.clinical import ClinicalConfig, ModelCache, analyse_file
    from liverfib.pipeline.clinical.deidentify import deidentify_path

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="liverfib-bench-"))
    rng = np.random.default_rng(0)
    dicoms = []
    for i in range(args.n):
        ds = us_dataset(synth_us_image(rng, "B", text="AB"))
        p = tmp / f"in_{i}.dcm"
        ds.save_as(p, enforce_file_format=True)
        dicoms.append(p)
    models = ModelCache(ClinicalConfig(with_cam=False, pdf=False))
    analyse_file(dicoms[0], tmp / "warm", models=models)  # load + warm up
    out: dict[str, object] = {"device": f"CPU ({platform.processor() or platform.machine()}), torch threads 1"}
    t = []
    for i, p in enumerate(dicoms):
        t0 = time.perf_counter()
        analyse_file(p, tmp / f"a{i}", models=models)
        t.append(time.perf_counter() - t0)
    out["analyse"] = _ci(t)
    cam = models.derive(with_cam=True, pdf=True)
    analyse_file(dicoms[0], tmp / "warm2", models=cam)
    t = []
    for i, p in enumerate(dicoms[: max(3, args.n // 2)]):
        t0 = time.perf_counter()
        analyse_file(p, tmp / f"c{i}", models=cam)
        t.append(time.perf_counter() - t0)
    out["analyse_cam_pdf"] = _ci(t)

    from pynetdicom import AE, StoragePresentationContexts, evt
    from pynetdicom.sop_class import UltrasoundImageStorage

    got: list[str] = []
    cond = threading.Condition()

    def on_store(event):  # type: ignore[no-untyped-def]
        with cond:
            got.append(event.dataset.Modality)
            cond.notify_all()
        return 0x0000

    pacs_port, port = free_port(), free_port()
    pacs = AE(ae_title="PACS")
    pacs.supported_contexts = StoragePresentationContexts
    server = pacs.start_server(("127.0.0.1", pacs_port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    store = JobStore(tmp / "jobs.sqlite")
    worker = JobWorker(store, make_processor(models.cfg, store=store, models=models,
                                             forward=Destination("127.0.0.1", pacs_port, "PACS")), poll_s=0.01).start()
    listener = DicomListener(store, tmp / "spool", allowed_aets=["BENCH"], on_job=lambda _i: worker.notify()).start(
        "127.0.0.1", port
    )
    scu = AE(ae_title="BENCH")
    scu.add_requested_context(UltrasoundImageStorage)
    import pydicom

    t = []
    for p in dicoms:
        ds = pydicom.dcmread(p)
        with cond:
            got.clear()
        t0 = time.perf_counter()
        assoc = scu.associate("127.0.0.1", port, ae_title="LIVERFIB")
        assoc.send_c_store(ds)
        assoc.release()
        with cond:
            cond.wait_for(lambda: len(got) >= 3, timeout=120)
        t.append(time.perf_counter() - t0)
    out["scp_round_trip"] = _ci(t)
    listener.stop()
    worker.stop()
    server.shutdown()
    t = []
    for p in dicoms:
        t0 = time.perf_counter()
        deidentify_path(p, tmp / "deid", salt="bench")
        t.append(time.perf_counter() - t0)
    out["deidentify"] = _ci(t)
    print(json.dumps(out, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
