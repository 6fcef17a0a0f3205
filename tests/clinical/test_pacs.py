"""Storage SCP on loopback: a US image goes in, SEG/SR/SC come back to a second SCP (the "PACS")."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pydicom
import pytest

from liverfib.clinical.jobs import JobStore, JobWorker
from liverfib.clinical.pacs import Destination, DicomListener, parse_destination
from liverfib.clinical.processor import make_processor
from liverfib.errors import ConfigError


class FakePacs:
    """A pynetdicom storage SCP that keeps what it receives."""

    def __init__(self, port: int) -> None:
        from pynetdicom import AE, StoragePresentationContexts, evt

        self.received: list[pydicom.Dataset] = []
        self.event = threading.Event()
        ae = AE(ae_title="PACS")
        ae.supported_contexts = StoragePresentationContexts
        self.server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)])

    def _store(self, event):  # type: ignore[no-untyped-def]
        ds = event.dataset
        ds.file_meta = event.file_meta
        self.received.append(ds)
        self.event.set()
        return 0x0000


def _send(path_or_ds, port: int, calling: str):  # type: ignore[no-untyped-def]
    from pynetdicom import AE
    from pynetdicom.sop_class import UltrasoundImageStorage

    ae = AE(ae_title=calling)
    ae.add_requested_context(UltrasoundImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="LIVERFIB")
    if not assoc.is_established:
        return None
    ds = pydicom.dcmread(path_or_ds) if isinstance(path_or_ds, Path) else path_or_ds
    status = assoc.send_c_store(ds)
    assoc.release()
    return int(status.Status)


def _settle(store: JobStore, worker: JobWorker, n: int, timeout: float = 60.0) -> None:
    """Wait until ``n`` jobs exist (they are created when the association ends) and all finished."""
    end = time.monotonic() + timeout
    while len(store.list()) < n and time.monotonic() < end:
        time.sleep(0.02)
    assert len(store.list()) >= n, f"expected {n} jobs, found {len(store.list())}"
    assert worker.wait_idle(max(1.0, end - time.monotonic()))


@pytest.fixture
def node(tmp_path: Path, clin, fast_models):  # type: ignore[no-untyped-def]
    pacs_port, port = clin.free_port(), clin.free_port()
    pacs = FakePacs(pacs_port)
    store = JobStore(tmp_path / "jobs.sqlite")
    process = make_processor(
        fast_models.cfg, store=store, forward=Destination("127.0.0.1", pacs_port, "PACS"), models=fast_models
    )
    worker = JobWorker(store, process, poll_s=0.1).start()
    listener = DicomListener(
        store, tmp_path / "spool", allowed_aets=["MODALITY"], on_job=lambda _i: worker.notify()
    ).start("127.0.0.1", port)
    yield store, worker, listener, pacs, port
    listener.stop()
    worker.stop()
    pacs.server.shutdown()


def test_us_in_seg_sr_sc_out(node, us_dicom) -> None:
    store, worker, listener, pacs, port = node
    src = us_dicom()
    assert _send(src, port, "MODALITY") == 0x0000
    _settle(store, worker, 1)
    jobs = store.list()
    assert len(jobs) == 1 and jobs[0].status == "done", jobs[0].error
    assert jobs[0].calling_ae == "MODALITY" and jobs[0].kind == "us-staging"
    assert jobs[0].forwarded and jobs[0].forwarded["ok"], jobs[0].forwarded
    deadline = time.monotonic() + 10
    while len(pacs.received) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    source = pydicom.dcmread(src)
    got = {ds.Modality: ds for ds in pacs.received}
    assert set(got) == {"SEG", "SR", "OT"}
    # de-identified on intake (no --keep-identifiers): results are filed under the pseudonymous study
    assert len({ds.StudyInstanceUID for ds in pacs.received}) == 1
    assert all(ds.StudyInstanceUID != source.StudyInstanceUID for ds in pacs.received)
    assert all(ds.PatientID.startswith("ANON-") and "Doe" not in str(ds.PatientName) for ds in pacs.received)
    assert "Doe" not in str(jobs[0].result)
    assert got["SR"].ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert jobs[0].result["stage"] in ("F0", "F1", "F2", "F3", "F4")


def test_unknown_ae_refused(node, us_dicom) -> None:
    store, _worker, _listener, _pacs, port = node
    assert _send(us_dicom(), port, "INTRUDER") is None
    assert store.list() == []


def test_corrupt_inputs_do_not_crash(node, us_dicom, clin) -> None:
    """Bad pixel data and missing UIDs give a failed job or a failure status; the server lives on."""
    store, worker, _listener, _pacs, port = node
    ds = pydicom.dcmread(us_dicom())
    ds.PixelData = ds.PixelData[:100]  # truncated pixel data: cannot be de-identified (masked)
    assert _send(ds, port, "MODALITY") == 0xC210
    blank = clin.us_dataset(__import__("numpy").zeros((64, 64), "uint8"))
    assert _send(blank, port, "MODALITY") == 0x0000
    no_uid = pydicom.dcmread(us_dicom())
    del no_uid.StudyInstanceUID
    assert _send(no_uid, port, "MODALITY") == 0xC210  # cannot understand
    _settle(store, worker, 3)
    jobs = {j.name: j for j in store.list()}
    assert all(j.status == "failed" and j.error for j in jobs.values()), [(j.name, j.status) for j in jobs.values()]
    reasons = " | ".join(j.error for j in jobs.values())
    assert "pixel" in reasons and "blank" in reasons and "undecodable" in reasons
    assert _send(us_dicom(seed=5), port, "MODALITY") == 0x0000  # ... and the server still works
    _settle(store, worker, 4)
    assert store.counts().get("done") == 1


def test_mr_routes_recorded(node, clin) -> None:
    """An MRE study (all its series) is one MRE job; other MR series are one MRI job each."""
    import numpy as np
    from pynetdicom import AE
    from pynetdicom.sop_class import MRImageStorage

    store, worker, _l, _p, port = node
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(MRImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="LIVERFIB")
    mre_study, mri_study = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    sent = [
        (mre_study, "MRE stiffness map"),
        (mre_study, "MRE magnitude"),
        (mre_study, "localizer"),  # no MRE words, but part of the MRE study
        (mri_study, "T1 VIBE arterial"),
        (mri_study, "T1 VIBE portal venous"),
    ]
    for study, desc in sent:
        ds = clin.us_dataset(np.full((32, 32), 50, np.uint8), modality="MR", study_uid=study, SeriesDescription=desc)
        assert int(assoc.send_c_store(ds).Status) == 0
    assoc.release()
    _settle(store, worker, 3)
    jobs = store.list()
    assert sorted(j.kind for j in jobs) == ["mre", "mri", "mri"]
    for j in jobs:
        assert j.status in ("unsupported", "failed", "done"), j.status
        assert j.error or j.result  # a reason, always
    mre = next(j for j in jobs if j.kind == "mre")
    from liverfib.pipeline.clinical.deidentify import _new_uid

    assert Path(mre.input_path).name == _new_uid(_l.salt, mre_study)  # the whole (de-identified) study folder
    assert mre.status != "done"  # 32x32 flat images are no MRE exam: a clear reason instead
    assert len(mre.error) > 20


def test_restart_requeues_and_options(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    job = store.add(origin="dicom", kind="us-staging", input_path="x", out_dir=tmp_path)
    assert store.claim_next().id == job.id
    store2 = JobStore(tmp_path / "jobs.sqlite")  # "restart"
    assert store2.requeue_interrupted() == 1 and store2.get(job.id).status == "queued"
    with pytest.raises(ConfigError, match="--allow"):
        DicomListener(store, tmp_path, allowed_aets=[])
    with pytest.raises(ConfigError, match="HOST:PORT:AET"):
        parse_destination("localhost:notaport")
    assert parse_destination("127.0.0.1:4242:ORTHANC") == Destination("127.0.0.1", 4242, "ORTHANC")


def test_mre_exam_through_scp(node, tmp_path: Path) -> None:
    """A simulated MRE exam (liverfib.mre phantom) sent series by series: one MRE job, stiffness in
    the SR sent back, stiffness map as SC."""
    mre = pytest.importorskip("liverfib.mre.phantom", reason="MRE workflow not in this build")
    from pynetdicom import AE
    from pynetdicom.sop_class import MRImageStorage

    from liverfib.report.dicom import read_sr_findings

    store, worker, _l, pacs, port = node
    truth = mre.write_phantoms(tmp_path / "mre", 1, seed=3)[0]
    files = sorted(p for p in (tmp_path / "mre").rglob("*") if p.is_file() and p.suffix != ".json")
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(MRImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="LIVERFIB")
    sent = 0
    for f in files:
        ds = pydicom.dcmread(f, force=True)
        if "PixelData" in ds:
            assert int(assoc.send_c_store(ds).Status) == 0
            sent += 1
    assoc.release()
    assert sent >= 3
    _settle(store, worker, 1, timeout=120)
    jobs = store.list()
    assert [j.kind for j in jobs] == ["mre"]
    job = jobs[0]
    assert job.status == "done", job.error
    assert job.forwarded and job.forwarded["ok"], job.forwarded
    deadline = time.monotonic() + 10
    while len(pacs.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    sr = next(ds for ds in pacs.received if ds.Modality == "SR")
    path = tmp_path / "sr_back.dcm"
    sr.save_as(path, enforce_file_format=True)
    back = read_sr_findings(path)
    assert back["stiffness_kpa"] == pytest.approx(job.result["stiffness_kpa"], rel=1e-6)
    assert back["stage"] == job.result["stage"]
    # a phantom measured by a phantom-trained segmenter: the SR says SYNTHETIC (issue 16)
    assert "SYNTHETIC" in str(sr.SeriesDescription)
    assert any(ds.Modality == "OT" for ds in pacs.received)  # stiffness map with colour bar
    assert 0.5 < back["stiffness_kpa"] < 15.0, truth
    html = (Path(job.out_dir) / job.id / "report.html").read_text()
    assert "MR elastography" in html and "MRE stiffness map" in html
