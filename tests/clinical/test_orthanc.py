"""Integration with a real Orthanc (Debian package 'orthanc') on loopback.

Orthanc gets a sample through its REST API, C-STOREs it to liverfib, and the SEG/SR/SC results
must appear back in Orthanc (checked through REST). Without the Orthanc binary the test is skipped,
and fails under CI=true.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from liverfib.clinical.jobs import JobStore, JobWorker
from liverfib.clinical.pacs import Destination, DicomListener
from liverfib.clinical.processor import make_processor


@pytest.fixture
def orthanc(tmp_path: Path, clin):  # type: ignore[no-untyped-def]
    import httpx

    orthanc_exe = clin.require_tool("Orthanc")
    http_port, dicom_port, liverfib_port = clin.free_port(), clin.free_port(), clin.free_port()
    config = {
        "Name": "liverfib-test",
        "StorageDirectory": str(tmp_path / "orthanc-db"),
        "IndexDirectory": str(tmp_path / "orthanc-db"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [],
        "DicomModalities": {"liverfib": ["LIVERFIB", "127.0.0.1", liverfib_port]},
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowStore": True,
        "ConcurrentJobs": 1,
    }
    cfg_path = tmp_path / "orthanc.json"
    cfg_path.write_text(json.dumps(config))
    log = (tmp_path / "orthanc.log").open("w")
    proc = subprocess.Popen([orthanc_exe, str(cfg_path)], stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30)
    deadline = time.monotonic() + 20
    while True:
        try:
            if client.get("/system").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"Orthanc did not start: {(tmp_path / 'orthanc.log').read_text()[-2000:]}")
        time.sleep(0.1)
    yield client, dicom_port, liverfib_port
    client.close()
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_orthanc_round_trip(orthanc, us_dicom, tmp_path: Path, fast_models, clin) -> None:
    client, orthanc_dicom_port, port = orthanc
    store = JobStore(tmp_path / "jobs.sqlite")
    process = make_processor(
        fast_models.cfg,
        store=store,
        forward=Destination("127.0.0.1", orthanc_dicom_port, "ORTHANC"),
        models=fast_models,
    )
    worker = JobWorker(store, process, poll_s=0.1).start()
    listener = DicomListener(  # as a PACS node runs it: de-identified at rest, re-identified on the way back
        store, tmp_path / "spool", allowed_aets=["ORTHANC"], on_job=lambda _i: worker.notify(), keep_identifiers=True
    ).start("127.0.0.1", port)
    try:
        up = client.post("/instances", content=us_dicom().read_bytes())
        assert up.status_code == 200, up.text
        src_id = up.json()["ID"]
        sent = client.post("/modalities/liverfib/store", content=src_id)
        assert sent.status_code == 200, sent.text
        deadline = time.monotonic() + 60
        modalities: dict[str, str] = {}
        while time.monotonic() < deadline:
            ids = client.get("/instances").json()
            if len(ids) >= 4:
                tags = {i: client.get(f"/instances/{i}/simplified-tags").json() for i in ids}
                modalities = {t["Modality"]: t["StudyInstanceUID"] for t in tags.values()}
                break
            time.sleep(0.2)
        assert worker.wait_idle(30)
        job = store.list()[0]
        assert job.status == "done", job.error
        assert {"US", "SEG", "SR", "OT"} <= set(modalities), f"Orthanc holds {modalities}; job {job.forwarded}"
        assert len(set(modalities.values())) == 1  # results filed in the source study
        assert len(client.get("/studies").json()) == 1
        patients = {client.get(f"/instances/{i}/simplified-tags").json()["PatientID"] for i in ids}
        assert patients == {clin.PHI["PatientID"]}
        spool = b"".join(p.read_bytes() for p in (tmp_path / "spool").rglob("*.dcm"))
        assert spool and clin.PHI["PatientID"].encode() not in spool and b"Doe" not in spool
    finally:
        listener.stop()
        worker.stop()
