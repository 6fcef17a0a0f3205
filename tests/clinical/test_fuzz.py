"""Fuzz: mutated and truncated DICOM files sent to the web app and to the DICOM listener.

Every request is answered (201/success or a 4xx/failure status with a reason, never a 5xx or a
dead server) and every accepted input ends as a finished job (done, or failed with a reason).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from liverfib.clinical.jobs import FINAL_STATES, JobStore, JobWorker
from liverfib.clinical.pacs import DicomListener
from liverfib.clinical.processor import make_processor
from liverfib.clinical.web import WebConfig, create_app

TOKEN = "fuzz-token-0123456789abcdef"


def _mutants(data: bytes, n: int, seed: int = 0) -> list[bytes]:
    """Truncations, byte flips in the header and in the pixel data, zeroed and random runs."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        b = bytearray(data)
        kind = i % 4
        if kind == 0:
            b = b[: int(rng.integers(140, len(b) - 1))]
        elif kind == 1:
            for pos in rng.integers(132, min(len(b), 1200), size=8):
                b[pos] = int(rng.integers(0, 256))
        elif kind == 2:
            start = int(rng.integers(132, len(b) - 64))
            b[start : start + 64] = bytes(rng.integers(0, 256, 64, dtype=np.uint8))
        else:
            start = int(rng.integers(132, 900))
            b[start : start + 16] = b"\xff" * 16  # huge lengths / undefined-length markers
        out.append(bytes(b))
    return out


def _expected_status(data: bytes) -> int:
    """The upload contract, decided with pydicom alone: a header it cannot parse is 400, a parsed
    header whose Modality is not US is 415 (not analysed), an ultrasound file without pixel data is
    422, one whose pixels do not decode is 400 (decoded before the answer), else accepted (201)."""
    import io

    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        modality = str(ds.get("Modality", "") or "").upper()
    except Exception:  # noqa: BLE001 - pydicom raises many types on corrupt headers; any of them means 400
        return 400
    if modality != "US":
        return 415
    try:
        full = pydicom.dcmread(io.BytesIO(data))
        if "PixelData" not in full:
            return 422
        full.pixel_array  # noqa: B018 - decoding is the check
    except Exception:  # noqa: BLE001 - as above: any decoder error means the upload is refused
        return 400
    return 201


def test_web_survives_mutated_dicom(tmp_path: Path, us_dicom, fast_models) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    worker = JobWorker(store, make_processor(fast_models.cfg, store=store, models=fast_models), poll_s=0.02).start()
    app = create_app(store, WebConfig(data_dir=tmp_path, token=TOKEN), on_job=lambda _i: worker.notify())
    accepted = 0
    with TestClient(app, raise_server_exceptions=False) as client:
        for i, data in enumerate(_mutants(us_dicom().read_bytes(), 16)):
            r = client.post("/api/upload", files={"file": (f"m{i}.dcm", data)},
                            headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == _expected_status(data), (i, r.status_code, r.text)
            assert r.status_code == 201 or r.json()["detail"]
            accepted += r.status_code == 201
        assert worker.wait_idle(120)
        jobs = store.list(limit=100)
        assert len(jobs) == accepted
        for j in jobs:
            assert j.status in FINAL_STATES and (j.status == "done" or j.error), (j.name, j.status, j.error)
        assert client.get("/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    worker.stop()


def test_scp_survives_mutated_dicom(tmp_path: Path, us_dicom, clin, fast_models) -> None:
    from pynetdicom import AE
    from pynetdicom.sop_class import UltrasoundImageStorage

    store = JobStore(tmp_path / "jobs.sqlite")
    worker = JobWorker(store, make_processor(fast_models.cfg, store=store, models=fast_models), poll_s=0.02).start()
    port = clin.free_port()
    listener = DicomListener(store, tmp_path / "spool", allowed_aets=["FUZZ"], on_job=lambda _i: worker.notify())
    listener.start("127.0.0.1", port)
    ae = AE(ae_title="FUZZ")
    ae.add_requested_context(UltrasoundImageStorage)
    try:
        statuses = []
        for i, data in enumerate(_mutants(us_dicom().read_bytes(), 12, seed=1)):
            f = tmp_path / f"m{i}.dcm"
            f.write_bytes(data)
            assoc = ae.associate("127.0.0.1", port, ae_title="LIVERFIB")
            assert assoc.is_established, f"listener refused association {i}"
            try:
                status = assoc.send_c_store(f)  # sent as stored: the SCU does not re-encode it
                statuses.append(int(status.Status) if "Status" in status else None)
            except Exception as exc:  # the test's SCU (pynetdicom) cannot read this mutant: not sent
                statuses.append(type(exc).__name__)
            finally:
                if assoc.is_established:
                    assoc.release()
        ok = us_dicom(seed=9)
        from liverfib.pipeline.clinical.deidentify import _new_uid

        ok_sop = __import__("pydicom").dcmread(ok).SOPInstanceUID
        ok_name = f"US {_new_uid(listener.salt, ok_sop)[-12:]}"  # named by its de-identified UID
        assoc = ae.associate("127.0.0.1", port, ae_title="LIVERFIB")
        assert assoc.is_established and int(assoc.send_c_store(ok).Status) == 0  # server still serves
        assoc.release()
        import time

        deadline = time.monotonic() + 60
        while not any(j.name == ok_name for j in store.list()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert worker.wait_idle(120)
        jobs = store.list(limit=100)
        assert any(j.name == ok_name and j.status == "done" for j in jobs)
        for j in jobs:
            assert j.status in FINAL_STATES and (j.status == "done" or j.error), (j.name, j.status)
        refused = sum(isinstance(s, int) and s != 0 for s in statuses)
        failed = sum(j.status == "failed" for j in jobs)
        if refused + failed == 0:  # the fuzz must bite somewhere, else it tested nothing
            pytest.fail(f"every mutant was accepted and analysed; statuses {statuses}")
    finally:
        listener.stop()
        worker.stop()
