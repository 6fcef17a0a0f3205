"""The probe of issue 18 replayed: hostile DICOM associations and hostile web requests.

Each test reproduces one defect the probe found (it failed on the code before the fix) and checks
the fix. No model is loaded here: the listener runs without a worker, the web app without one.
"""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient

from liverfib.clinical.jobs import JobStore
from liverfib.clinical.pacs import DicomListener, accepted_transfer_syntaxes, check_port, is_dicom_uid
from liverfib.clinical.web import COOKIE, WebConfig, create_app
from liverfib.errors import ConfigError

TOKEN = "hostile-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# ------------------------------------------------------------------------------ DICOM listener
@pytest.fixture
def listener(tmp_path: Path, clin):  # type: ignore[no-untyped-def]
    """A listener without a worker, its data folder ``tmp_path/data``."""
    data = tmp_path / "data"
    store = JobStore(data / "jobs.sqlite")
    lst = DicomListener(store, data / "spool", allowed_aets=["MODALITY"], salt="test-salt").start(
        "127.0.0.1", clin.free_port()
    )
    yield lst, store, data
    lst.stop()


def _associate(port: int, *, called: str = "LIVERFIB", contexts=None):  # type: ignore[no-untyped-def]
    from pynetdicom import AE
    from pynetdicom.sop_class import SecondaryCaptureImageStorage, UltrasoundImageStorage

    ae = AE(ae_title="MODALITY")
    for ctx in contexts or [(UltrasoundImageStorage, None), (SecondaryCaptureImageStorage, None)]:
        ae.add_requested_context(ctx[0], ctx[1]) if ctx[1] else ae.add_requested_context(ctx[0])
    return ae.associate("127.0.0.1", port, ae_title=called)


def _store(port: int, ds) -> int:  # type: ignore[no-untyped-def]
    assoc = _associate(port)
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.parametrize(
    "uid,ok",
    [("1.2.840.10008.5.1.4.1.1.6.1", True), ("0.1", True), ("2.25.0", True), ("..", False), ("1..2", False),
     (".1.2", False), ("1.2.", False), ("1.02.3", False), ("", False), ("1.2.a", False), ("1" * 65, False),
     ("1." + "2" * 62, True), ("1/../2", False)],
)
def test_dicom_uid_rule(uid: str, ok: bool) -> None:
    assert is_dicom_uid(uid) is ok


@pytest.mark.parametrize("field", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
def test_path_traversal_refused(listener, clin, tmp_path: Path, field: str) -> None:
    """Probe case 1: StudyInstanceUID = SeriesInstanceUID = '..' was stored outside --data."""
    lst, store, data = listener
    ds = clin.us_dataset(np.zeros((64, 64), np.uint8))
    ds.StudyInstanceUID = ds.SeriesInstanceUID = ".."
    if field == "SOPInstanceUID":
        ds.StudyInstanceUID, ds.SeriesInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
        ds.SOPInstanceUID = "../../../x"
    assert _store(lst.port, ds) == 0xC210
    outside = [p for p in tmp_path.rglob("*.dcm") if data / "spool" not in p.parents]
    assert outside == [] and not list((data / "spool").rglob("*.dcm"))
    jobs = store.list()
    assert len(jobs) == 1 and jobs[0].status == "failed" and "not DICOM UIDs" in jobs[0].error


def test_wrong_called_ae_refused(listener) -> None:
    """Probe case 2: an association to called AE 'NOTME' was accepted."""
    lst, _store_, _data = listener
    assoc = _associate(lst.port, called="NOTME")
    assert not assoc.is_established
    good = _associate(lst.port)
    assert good.is_established
    good.release()


def test_port_and_host_options(tmp_path: Path) -> None:
    """Probe case 2: `serve-dicom --port -1` gave a traceback; the default host was 0.0.0.0."""
    import inspect

    from typer.testing import CliRunner

    from liverfib.cli import app
    from liverfib.clinical.serve import run_serve_dicom

    for bad in (-1, 0, 65536):
        with pytest.raises(ConfigError, match="1..65535"):
            check_port(bad)
    assert inspect.signature(run_serve_dicom).parameters["host"].default == "127.0.0.1"
    runner = CliRunner()
    r = runner.invoke(app, ["serve-dicom", "--port", "-1", "--allow", "X", "--data", str(tmp_path / "d")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "--port must be a TCP port 1..65535" in r.output
    r = runner.invoke(app, ["serve", "--max-upload-mb", "-1", "--data", str(tmp_path / "d")])
    assert r.exit_code == 2 and "--max-upload-mb must be above 0" in r.output


def test_unrouted_instance_refused(listener, clin) -> None:
    """Probe case 3: a CT instance got 0x0000 and then sat in the spool, never a job or an error."""
    from pydicom.uid import CTImageStorage

    lst, store, data = listener
    ds = clin.us_dataset(np.zeros((64, 64), np.uint8))
    ds.Modality = "CT"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    assert _store(lst.port, ds) == 0xC211  # refused: no analysis for CT
    assoc = _associate(lst.port, contexts=[(CTImageStorage, None)])  # CT storage is not even negotiated
    assert not assoc.is_established or not assoc.accepted_contexts
    if assoc.is_established:
        assoc.release()
    assert not list((data / "spool").rglob("*.dcm")) and store.list() == []


def test_compressed_transfer_syntaxes(listener, clin, us_dicom) -> None:
    """Probe case 3: JPEG / JPEG-LS / JPEG 2000 / RLE from an ultrasound PACS were not negotiated."""
    from pydicom import uid
    from pynetdicom.sop_class import UltrasoundImageStorage

    lst, store, data = listener
    wanted = [uid.JPEGBaseline8Bit, uid.JPEGLSLossless, uid.JPEG2000Lossless, uid.RLELossless]
    offered = accepted_transfer_syntaxes()
    assert set(wanted) <= set(offered), "a decoder is missing from the environment (pylibjpeg, pyjpegls, Pillow)"
    for ts in wanted:
        assoc = _associate(lst.port, contexts=[(UltrasoundImageStorage, [ts])])
        assert assoc.is_established and [c.transfer_syntax[0] for c in assoc.accepted_contexts] == [ts], ts
        assoc.release()
    ds = pydicom.dcmread(us_dicom())
    ds.compress(uid.RLELossless)
    assoc = _associate(lst.port, contexts=[(UltrasoundImageStorage, [uid.RLELossless])])
    assert int(assoc.send_c_store(ds).Status) == 0
    assoc.release()
    stored = list((data / "spool").rglob("*.dcm"))
    assert len(stored) == 1 and pydicom.dcmread(stored[0]).pixel_array.shape == ds.pixel_array.shape


def _wait_jobs(store: JobStore, n: int) -> None:
    end = time.monotonic() + 10
    while len(store.list()) < n and time.monotonic() < end:
        time.sleep(0.02)


@pytest.mark.parametrize("keep", [False, True])
def test_no_phi_at_rest(tmp_path: Path, clin, us_dicom, keep: bool) -> None:
    """Probe case 4: PatientName, PatientID and dates stayed in every spooled file."""
    from liverfib.clinical.pacs import reidentify

    data = tmp_path / "data"
    store = JobStore(data / "jobs.sqlite")
    lst = DicomListener(store, data / "spool", allowed_aets=["MODALITY"], keep_identifiers=keep)
    lst.start("127.0.0.1", clin.free_port())
    try:
        src = pydicom.dcmread(us_dicom())
        assert _store(lst.port, src) == 0
        _wait_jobs(store, 1)
    finally:
        lst.stop()
    spooled = list((data / "spool").rglob("*.dcm"))
    assert len(spooled) == 1
    spool_bytes = _all_bytes(data / "spool")
    phi = [*clin.PHI.values(), "Doe", "Johnathan", "20240305", str(src.StudyInstanceUID), str(src.SOPInstanceUID)]
    assert [v for v in phi if v.encode() in spool_bytes] == []
    ds = pydicom.dcmread(spooled[0])
    assert ds.PatientIdentityRemoved == "YES" and ds.PatientID.startswith("ANON-")
    assert (data / "deid.salt").stat().st_mode & 0o077 == 0  # the secret is private to the server
    db = _all_bytes(data)  # jobs.sqlite (+ WAL), salt, spool
    if not keep:
        assert [v for v in phi if v.encode() in db] == []
        assert reidentify(ds, store.pseudonyms) == 0
    else:  # the map is kept, and brings the original identifiers back on the way out
        assert reidentify(ds, store.pseudonyms) >= 4
        assert ds.PatientID == src.PatientID and ds.StudyInstanceUID == src.StudyInstanceUID
        assert str(ds.PatientName) == str(src.PatientName) and ds.SOPInstanceUID == src.SOPInstanceUID


# -------------------------------------------------------------------------------------- web
@pytest.fixture
def web_cfg(tmp_path: Path) -> dict:
    return {"data_dir": tmp_path / "data", "token": TOKEN, "max_upload_bytes": 40_000_000, "deid_salt": "s"}


def _client(store_dir: Path, **cfg) -> tuple[TestClient, JobStore]:  # type: ignore[no-untyped-def]
    store = JobStore(store_dir / "jobs.sqlite")
    return TestClient(create_app(store, WebConfig(**cfg))), store


def _png(make_us_image, seed: int = 0) -> bytes:  # type: ignore[no-untyped-def]
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(make_us_image(np.random.default_rng(seed), "B")).save(buf, format="PNG")
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` 8-bit gray pixels with a 30-byte IDAT (a bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def test_upload_is_streamed_not_read_whole(tmp_path: Path, web_cfg: dict, clin) -> None:
    """Probe case 5: six 60 MB uploads were read whole into memory (the process reached 1.6 GB)."""
    import httpx

    from liverfib.clinical.web import create_app as make

    store = JobStore(tmp_path / "jobs.sqlite")
    port = clin.free_port()
    server, thread = clin.serve_app(make(store, WebConfig(**web_cfg)), port)
    size = 24 * 1024 * 1024

    def body():  # a 24 MiB "PNG" streamed in 1 MiB chunks: the client holds 1 MiB at a time
        yield (b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
               b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n")
        chunk = np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
        for _ in range(size >> 20):
            yield chunk
        yield b"\r\n--b--\r\n"

    try:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        r = httpx.post(f"http://127.0.0.1:{port}/api/upload", content=body(), timeout=120,
                       headers={**AUTH, "content-type": "multipart/form-data; boundary=b"})
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    finally:
        server.should_exit = True
        thread.join(10)
    assert r.status_code == 400 and "PNG" in r.json()["detail"], r.text  # random body: not a PNG
    assert peak < 8 * 1024 * 1024, f"peak Python allocation {peak / 2**20:.1f} MiB for a 24 MiB upload"
    assert store.list() == [] and not list((tmp_path / "data" / "uploads").rglob("*"))


def test_images_decoded_before_201(tmp_path: Path, web_cfg: dict, make_us_image, clin) -> None:
    """Probe case 5: a truncated PNG, a decompression bomb and a DICOM without pixels got 201."""
    client, store = _client(tmp_path, **web_cfg)
    png = _png(make_us_image)
    r = client.post("/api/upload", files={"file": ("t.png", png[: len(png) // 2])}, headers=AUTH)
    assert r.status_code == 400 and "truncated" in r.json()["detail"], r.text
    r = client.post("/api/upload", files={"file": ("bomb.png", _png_header_only(50_000, 50_000))}, headers=AUTH)
    assert r.status_code == 413 and "limit" in r.json()["detail"], r.text
    ds = clin.us_dataset(np.zeros((64, 64), np.uint8))
    del ds.PixelData
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    r = client.post("/api/upload", files={"file": ("nopix.dcm", buf.getvalue())}, headers=AUTH)
    assert r.status_code == 422 and "without pixel data" in r.json()["detail"], r.text
    assert store.list() == []
    assert client.post("/api/upload", files={"file": ("ok.png", png)}, headers=AUTH).status_code == 201


def test_queue_full_gets_429(tmp_path: Path, web_cfg: dict, make_us_image) -> None:
    """Probe case 5: no bounded queue in front of the worker."""
    client, store = _client(tmp_path, **web_cfg, max_queued_jobs=2)
    png = _png(make_us_image)
    for _ in range(2):
        assert client.post("/api/upload", files={"file": ("a.png", png)}, headers=AUTH).status_code == 201
    r = client.post("/api/upload", files={"file": ("a.png", png)}, headers=AUTH)
    assert r.status_code == 429 and "queue is full" in r.json()["detail"] and r.headers["retry-after"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert len(store.list()) == 2


def test_login_rate_limit(tmp_path: Path, web_cfg: dict) -> None:
    """Probe case 6: 50 wrong logins in 1.25 s never got a 429."""
    client, _ = _client(tmp_path, **web_cfg, login_max_failures=5, login_window_s=60)
    codes = [client.post("/login", data={"token": f"guess-{i}"}).status_code for i in range(8)]
    assert codes == [401] * 5 + [429] * 3
    r = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # even the right token waits
    assert "content-security-policy" in r.headers
    assert client.get("/api/jobs", headers={"Authorization": "Bearer wrong-wrong-wrong"}).status_code == 429
    other, _ = _client(tmp_path / "other", **{**web_cfg, "data_dir": tmp_path / "d2"}, login_max_failures=3)
    bearer = [other.get("/api/jobs", headers={"Authorization": f"Bearer g{i}"}).status_code for i in range(4)]
    assert bearer == [401, 401, 401, 429]  # guessing through the API header is throttled as well


def test_sessions_expire_and_are_revoked(tmp_path: Path, web_cfg: dict) -> None:
    """Probe case 6: the session cookie was a fixed HMAC of the token that never expired."""
    client, _ = _client(tmp_path, **web_cfg, session_ttl_s=1.0)
    r = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    first = r.cookies[COOKIE]
    assert "max-age=1" in r.headers["set-cookie"].lower()
    assert client.get("/api/jobs").status_code == 200
    time.sleep(1.2)
    client.cookies.set(COOKIE, first)  # a client that ignores Max-Age (or a stolen cookie) ...
    assert client.get("/api/jobs").status_code == 401  # ... is refused: the session expired server-side
    client.cookies.clear()
    client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert client.cookies[COOKIE] != first  # random per login, not derived from the token
    stolen = client.cookies[COOKIE]
    assert client.get("/api/jobs").status_code == 200
    assert client.post("/logout", follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, stolen)
    assert client.get("/api/jobs").status_code == 401  # revoked on the server


def test_options_validated(tmp_path: Path) -> None:
    """Probe case 6: `--max-upload-mb -1` started a server that refused everything."""
    from pydantic import ValidationError

    for bad in ({"max_upload_bytes": -1}, {"max_upload_bytes": 0}, {"max_queued_jobs": 0}, {"token": "short"},
                {"session_ttl_s": -5}):
        with pytest.raises(ValidationError):
            WebConfig(**{"data_dir": tmp_path, "token": TOKEN, **bad})


def test_security_headers_and_csp(tmp_path: Path, web_cfg: dict) -> None:
    """Probe case 6: 413 replies lacked the security headers; the CSP allowed inline scripts."""
    client, _ = _client(tmp_path, **{**web_cfg, "max_upload_bytes": 1000})
    responses = {
        "413": client.post("/api/upload", files={"file": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 5000)}, headers=AUTH),
        "401": client.get("/api/jobs"),
        "404": client.get("/api/jobs/nope", headers=AUTH),
        "200": client.get("/", headers=AUTH),
    }
    assert responses["413"].status_code == 413
    for code, r in responses.items():
        csp = r.headers.get("content-security-policy", "")
        assert r.headers.get("x-content-type-options") == "nosniff" and r.headers.get("x-frame-options") == "DENY", code
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, (code, csp)
    page = responses["200"].text
    assert "<script src=\"/static/viewer.js\">" in page and "oninput" not in page and "style=\"" not in page
    assert "<style>" not in page
    js = client.get("/static/viewer.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript") and "opacity" in js.text
    assert client.get("/static/../jobs.sqlite").status_code == 404


def test_api_returns_no_paths_or_phi(tmp_path: Path, web_cfg: dict, us_dicom, clin) -> None:
    """Probe case 4: GET /api/jobs/{id} returned PatientName, PatientID and server file paths."""
    client, store = _client(tmp_path, **web_cfg)
    src = pydicom.dcmread(us_dicom())
    r = client.post("/api/upload", files={"file": ("x.dcm", us_dicom().read_bytes())}, headers=AUTH)
    assert r.status_code == 201, r.text
    jid = r.json()["jobs"][0]["id"]
    on_disk = _all_bytes(tmp_path / "data" / "uploads")
    assert [v for v in clin.PHI.values() if v.encode() in on_disk] == []  # de-identified on intake
    # a finished job whose result (as older versions wrote it) names the patient
    store.finish(jid, "done", result={"stage": "F1", "study": {"PatientName": str(src.PatientName),
                                                              "PatientID": src.PatientID, "StudyDate": "20240305",
                                                              "Modality": "US"}})
    for url in (f"/api/jobs/{jid}", "/api/jobs"):
        text = client.get(url, headers=AUTH).text
        assert str(tmp_path) not in text and "/uploads/" not in text, text
        assert "Doe" not in text and src.PatientID not in text and "20240305" not in text, text
    assert client.get(f"/api/jobs/{jid}", headers=AUTH).json()["result"]["study"] == {"Modality": "US"}


# ----------------------------------------------------------------------------------------- CI
def test_missing_integration_program_fails_under_ci(clin, monkeypatch) -> None:
    """CI must run what it claims to test: a missing program is a failure under CI=true, a skip
    with the install hint elsewhere."""
    for ci, outcome in (("true", pytest.fail.Exception), ("", pytest.skip.Exception)):
        monkeypatch.setenv("CI", ci)
        with pytest.raises(BaseException, match="install-system-deps") as info:  # a skip must not pass as a fail
            clin.require_tool("no-such-program-liverfib")
        assert info.type is outcome, (ci, info.type)
    assert clin.require_tool("no-such-program-liverfib", "sh").endswith("/sh")


def test_api_strips_server_paths_from_reasons(tmp_path: Path, web_cfg: dict) -> None:
    """A failure reason that names a server file shows only the file name through the API."""
    client, store = _client(tmp_path, **web_cfg)
    job = store.add(origin="web", kind="us-staging", input_path=tmp_path / "in.png", out_dir=tmp_path)
    store.finish(job.id, "failed", error=f"FileNotFoundError: '{tmp_path}/data/uploads/ab12/input.png' is gone")
    body = client.get(f"/api/jobs/{job.id}", headers=AUTH).json()
    assert body["error"] == "FileNotFoundError: 'input.png' is gone" and "input_path" not in body


def test_jpeg_baseline_colour_us_accepted(listener, clin) -> None:
    """What ultrasound PACS send most: JPEG baseline, YBR colour. Accepted, decoded, de-identified,
    and the burned-in text outside the fan blanked."""
    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit
    from pynetdicom.sop_class import UltrasoundImageStorage

    lst, _store, data = listener
    gray = np.zeros((200, 240), np.uint8)
    gray[40:180, 40:200] = np.random.default_rng(0).integers(30, 200, (140, 160))
    gray[5:15, 5:60] = 255  # "burned-in text" above the image
    ds = clin.us_dataset(gray)
    buf = io.BytesIO()
    Image.fromarray(np.stack([gray] * 3, -1)).save(buf, format="JPEG", quality=95)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL_422", 0
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    assoc = _associate(lst.port, contexts=[(UltrasoundImageStorage, [JPEGBaseline8Bit])])
    assert int(assoc.send_c_store(ds).Status) == 0
    assoc.release()
    stored = pydicom.dcmread(next((data / "spool").rglob("*.dcm")))
    assert stored.PatientID.startswith("ANON-") and stored.BurnedInAnnotation == "NO"
    pixels = stored.pixel_array
    assert pixels[5:15, 5:60].max() == 0 and pixels[60:160, 60:180].max() > 100
