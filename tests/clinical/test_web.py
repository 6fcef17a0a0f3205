"""Web app: token auth on every route, upload protections, job flow, result page, downloads."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from liverfib.clinical.jobs import JobStore, JobWorker
from liverfib.clinical.processor import make_processor
from liverfib.clinical.web import WebConfig, create_app

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def web(tmp_path: Path, fast_models):  # type: ignore[no-untyped-def]
    store = JobStore(tmp_path / "jobs.sqlite")
    worker = JobWorker(store, make_processor(fast_models.cfg, store=store, models=fast_models), poll_s=0.05).start()
    cfg = WebConfig(
        data_dir=tmp_path, token=TOKEN, max_upload_bytes=2_000_000, max_zip_total_bytes=5_000_000,
        max_zip_member_bytes=3_000_000,
    )
    app = create_app(store, cfg, on_job=lambda _i: worker.notify())
    with TestClient(app) as client:
        yield client, store, worker
    worker.stop()


def _png(make_us_image, seed: int = 0) -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(make_us_image(np.random.default_rng(seed), "B")).save(buf, format="PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize(
    "method,url",
    [("get", "/"), ("get", "/api/jobs"), ("get", "/api/jobs/x"), ("get", "/jobs/x"), ("get", "/jobs/x/files/sr.dcm"),
     ("post", "/api/upload"), ("post", "/upload")],
)
def test_every_route_needs_the_token(web, method: str, url: str) -> None:
    client, *_ = web
    assert getattr(client, method)(url).status_code == 401
    assert getattr(client, method)(url, headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}).status_code == 401


def test_login_cookie(web) -> None:
    client, *_ = web
    assert client.post("/login", data={"token": "nope"}).status_code == 401
    r = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
    assert client.get("/api/jobs").status_code == 200  # cookie now held by the client
    client.cookies.clear()
    assert client.get("/api/jobs").status_code == 401


def test_upload_png_and_dicom_to_result(web, make_us_image, us_dicom) -> None:
    client, store, worker = web
    r = client.post("/api/upload", files={"file": ("scan <b>.png", _png(make_us_image), "text/plain")}, headers=AUTH)
    assert r.status_code == 201, r.text
    r2 = client.post("/api/upload", files={"file": ("x.bin", us_dicom().read_bytes())}, headers=AUTH)
    assert r2.status_code == 201, r2.text
    assert worker.wait_idle(60)
    jobs = client.get("/api/jobs", headers=AUTH).json()
    assert len(jobs) == 2 and all(j["status"] == "done" for j in jobs), jobs
    jid = r.json()["jobs"][0]["id"]
    page = client.get(f"/jobs/{jid}", headers=AUTH).text
    assert 'id="opacity"' in page and 'id="probchart"' in page and "<b>.png" not in page  # escaped name
    for name in ("seg.dcm", "sr.dcm", "sc.dcm", "overlay_layer.png", "report.pdf", "report.html"):
        f = client.get(f"/jobs/{jid}/files/{name}", headers=AUTH)
        assert f.status_code == 200 and len(f.content) > 100, name
    assert client.get(f"/jobs/{jid}/files/report.pdf", headers=AUTH).content[:5] == b"%PDF-"
    assert client.get(f"/jobs/{jid}/files/..%2Fjobs.sqlite", headers=AUTH).status_code == 404
    assert "<table" in client.get("/", headers=AUTH).text


def test_size_limit_sniffing_and_hostile_zips(web, make_us_image) -> None:
    client, store, _ = web
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * 2_100_000
    assert client.post("/api/upload", files={"file": ("big.png", big)}, headers=AUTH).status_code == 413

    def chunks():  # a valid multipart body without Content-Length: the streamed count must stop it
        yield (b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
               b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n")
        for _ in range(30):
            yield b"\0" * 100_000
        yield b"\r\n--x--\r\n"

    r = client.post("/api/upload", content=chunks(), headers={**AUTH, "content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413
    r = client.post("/api/upload", files={"file": ("evil.png", b"<script>alert(1)</script>", "image/png")}, headers=AUTH)
    assert r.status_code == 415 and "unsupported content" in r.json()["detail"]
    png = _png(make_us_image)
    for name in ("../../escape.png", "/abs/path.png", "C:/win.png", "a/../../b.png"):
        r = client.post("/api/upload", files={"file": ("z.zip", _zip({name: png}))}, headers=AUTH)
        assert r.status_code == 400 and "zip-slip" in r.json()["detail"], name
    r = client.post("/api/upload", files={"file": ("z.zip", _zip({"ok.png": png}, symlink="link.png"))}, headers=AUTH)
    assert r.status_code == 400 and "symbolic link" in r.json()["detail"]
    bomb = _zip({"bomb.png": b"\0" * 20_000_000})  # ~20 kB compressed
    assert len(bomb) < 2_000_000
    r = client.post("/api/upload", files={"file": ("bomb.zip", bomb)}, headers=AUTH)
    assert r.status_code == 413 and "zip" in r.json()["detail"]
    r = client.post("/api/upload", files={"file": ("bad.zip", b"PK\x03\x04garbage" * 10)}, headers=AUTH)
    assert r.status_code == 400 and "corrupt zip" in r.json()["detail"]
    r = client.post("/api/upload", files={"file": ("t.dcm", b"\0" * 128 + b"DICM" + b"\xff" * 50)}, headers=AUTH)
    # pydicom parses these bytes as a header without a Modality: refused as not analysable (415)
    assert r.status_code == 415 and "modality (none) is not analysed" in r.json()["detail"]
    assert store.list() == []  # nothing hostile became a job
    assert not any((Path(store.path).parent).rglob("escape.png"))


def test_zip_of_images_and_fuzz(web, make_us_image, us_dicom) -> None:
    """A zip with good and bad members: truncated images are decoded before the 201 and listed as
    skipped with their reason; the good members become jobs."""
    client, store, worker = web
    png = _png(make_us_image, 1)
    dcm = us_dicom().read_bytes()
    members = {"a/one.png": png, "a/two.dcm": dcm, "notes.txt": b"hello", "trunc.png": png[: len(png) // 3],
               "trunc.dcm": dcm[: len(dcm) - 5000]}
    r = client.post("/api/upload", files={"file": ("study.zip", _zip(members))}, headers=AUTH)
    assert r.status_code == 201, r.text
    body = r.json()
    skipped = {s["name"]: s["reason"] for s in body["skipped"]}
    assert set(skipped) == {"notes.txt", "trunc.png", "trunc.dcm"}
    assert "truncated" in skipped["trunc.png"] and "DICOM" in skipped["trunc.dcm"], skipped
    assert len(body["jobs"]) == 2
    assert worker.wait_idle(60)
    status = {j["name"]: (j["status"], j["error"]) for j in client.get("/api/jobs", headers=AUTH).json()}
    assert status["a/one.png"][0] == "done" and status["a/two.dcm"][0] == "done"
    assert client.get("/api/jobs", headers=AUTH).status_code == 200  # still serving


def test_zip_mr_grouping(web, clin) -> None:
    """MR in a zip: an MRE exam (any series with elastography terms) is one job; plain MR one per series."""
    import numpy as np
    import pydicom

    client, store, worker = web

    def mr(study: str, series: str, desc: str) -> bytes:
        ds = clin.us_dataset(np.full((32, 32), 40, np.uint8), modality="MR", study_uid=study, SeriesDescription=desc)
        ds.SeriesInstanceUID = series
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        return buf.getvalue()

    uid = pydicom.uid.generate_uid
    study, s1, s2 = uid(), uid(), uid()
    exam = {"exam/mag/1.dcm": mr(study, s1, "MRE magnitude"), "exam/mag/2.dcm": mr(study, s1, "MRE magnitude"),
            "exam/kpa/1.dcm": mr(study, s2, "MRE stiffness kPa")}
    r = client.post("/api/upload", files={"file": ("mre.zip", _zip(exam))}, headers=AUTH)
    assert r.status_code == 201, r.text
    assert [j["kind"] for j in r.json()["jobs"]] == ["mre"]
    t1, t2 = uid(), uid()
    plain = {"a/1.dcm": mr(study, t1, "T1 arterial"), "a/2.dcm": mr(study, t1, "T1 arterial"),
             "b/1.dcm": mr(study, t2, "T1 portal")}
    r = client.post("/api/upload", files={"file": ("mri.zip", _zip(plain))}, headers=AUTH)
    assert r.status_code == 201, r.text
    assert [j["kind"] for j in r.json()["jobs"]] == ["mri", "mri"]
    assert worker.wait_idle(60)
    for j in store.list():
        assert j.status in ("unsupported", "failed", "done") and (j.error or j.result), (j.kind, j.status)
