"""The 3D volume viewer: the NiiVue bundle served from the package (no CDN), its licences and its
manifest; the pages and the browser run are below."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = resources.files("liverfib.clinical").joinpath("static")


def test_bundle_matches_its_manifest() -> None:
    js = STATIC.joinpath("niivue-viewer.js").read_bytes()
    manifest = json.loads(STATIC.joinpath("niivue-viewer.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(js).hexdigest() and manifest["bytes"] == len(js)
    assert len(js) < 5_000_000  # a few MB at most
    assert manifest["bundled"]["@niivue/niivue"]["license"] == "BSD-2-Clause"
    lock = json.loads((ROOT / "webviewer" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@niivue/niivue"]["version"] == manifest["bundled"]["@niivue/niivue"]["version"]
    assert b"LiverfibViewer" in js and b"nv-canvas" in js  # the global and the page hook


def test_every_bundled_package_has_its_licence() -> None:
    manifest = json.loads(STATIC.joinpath("niivue-viewer.manifest.json").read_text())
    text = STATIC.joinpath("NIIVUE-LICENSES.txt").read_text()
    for name, info in manifest["bundled"].items():
        assert f"{name} {info['version']} ({info['license']})" in text
    assert "Copyright (c) 2021, Niivue" in text


@pytest.mark.skipif(not (ROOT / "webviewer" / "node_modules").is_dir() or not shutil.which("node"),
                    reason="webviewer/node_modules absent: run `make viewer` (node + npm registry)")
def test_committed_bundle_is_a_rebuild(tmp_path: Path) -> None:
    subprocess.run(["node", str(ROOT / "webviewer" / "build.mjs"), str(tmp_path)], check=True, capture_output=True)
    for name in ("niivue-viewer.js", "niivue-viewer.manifest.json", "NIIVUE-LICENSES.txt"):
        assert (tmp_path / name).read_bytes() == STATIC.joinpath(name).read_bytes(), f"{name}: run make viewer"


# ------------------------------------------------------------------------------- NIfTI uploads
TOKEN = "viewer-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _nifti_bytes(array, *, zooms=(1.5, 1.5, 3.0), gz: bool = True, descrip: bytes = b"") -> bytes:  # type: ignore[no-untyped-def]
    import gzip

    import nibabel as nib
    import numpy as np

    img = nib.Nifti1Image(array, np.diag([*zooms, 1.0]))
    img.header["descrip"] = descrip
    if descrip:
        img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"PatientName=" + descrip))
    raw = img.to_bytes()
    return gzip.compress(raw) if gz else raw


def _liver_volume():  # type: ignore[no-untyped-def]
    """A CT-like (x, y, z) int16 volume: an ellipsoid 'liver' of 60 HU in -100 HU fat, in air."""
    import numpy as np

    x, y, z = np.mgrid[:64, :64, :12]
    body = ((x - 32) ** 2 + (y - 32) ** 2) < 30**2
    liver = ((x - 26) / 16.0) ** 2 + ((y - 30) / 12.0) ** 2 + ((z - 6) / 5.0) ** 2 < 1
    vol = np.where(body, -100, -1000) + np.where(liver, 160, 0)
    return (vol + np.random.default_rng(0).normal(0, 8, vol.shape)).astype(np.int16)


@pytest.fixture
def app_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from liverfib.clinical.jobs import JobStore
    from liverfib.clinical.web import WebConfig, create_app

    store = JobStore(tmp_path / "jobs.sqlite")
    app = create_app(store, WebConfig(data_dir=tmp_path, token=TOKEN, max_volume_voxels=100_000))
    with TestClient(app) as client:
        yield client, store


def test_nifti_upload_is_checked_and_de_identified(app_store) -> None:  # type: ignore[no-untyped-def]
    import gzip

    import nibabel as nib
    import numpy as np

    client, store = app_store
    vol = _liver_volume()
    for gz in (True, False):
        body = _nifti_bytes(vol, gz=gz, descrip=b"Doe^John 19580214")
        r = client.post("/api/upload", files={"file": ("scan.bin", body)}, headers=AUTH)  # name does not matter
        assert r.status_code == 201, r.text
        job = store.get(r.json()["jobs"][0]["id"])
        assert job.kind == "segment-3d"
        stored = Path(job.input_path).read_bytes()
        raw = gzip.decompress(stored) if gz else stored
        assert b"Doe" not in raw  # descrip and the header extension are gone
        back = nib.Nifti1Image.from_bytes(raw)
        assert np.array_equal(np.asanyarray(back.dataobj), vol) and back.header.get_zooms() == (1.5, 1.5, 3.0)
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("study/ct.nii.gz", _nifti_bytes(vol))
        zf.writestr("study/notes.txt", b"not an image")
    r = client.post("/api/upload", files={"file": ("vols.zip", buf.getvalue())}, headers=AUTH)
    assert r.status_code == 201, r.text
    assert [j["kind"] for j in r.json()["jobs"]] == ["segment-3d"] and len(r.json()["skipped"]) == 1


@pytest.mark.parametrize("case,status,words", [
    ("2d", 400, "expected one 3D volume"),
    ("thin", 400, "at least 8"),
    ("nan", 400, "NaN"),
    ("big", 413, "above the limit"),
    ("truncated", 400, "truncated"),
])
def test_bad_nifti_uploads_are_refused(app_store, case: str, status: int, words: str) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    client, store = app_store
    arrays = {"2d": np.zeros((32, 32), np.float32), "thin": np.zeros((32, 32, 4), np.float32),
              "nan": np.full((16, 16, 16), np.nan, np.float32), "big": np.zeros((64, 64, 64), np.uint8),
              "truncated": _liver_volume()}
    body = _nifti_bytes(arrays[case], gz=False)
    if case == "truncated":
        body = body[: len(body) // 2]
    r = client.post("/api/upload", files={"file": ("v.nii", body)}, headers=AUTH)
    assert r.status_code == status and words in r.json()["detail"], r.text
    assert store.list() == []


# ------------------------------------------------------------------------------------ job pages
def _done(store, tmp_path: Path, kind: str, result: dict) -> str:  # type: ignore[no-untyped-def]
    job = store.add(origin="web", kind=kind, input_path=tmp_path, out_dir=tmp_path / "results", name="x")
    store.finish(job.id, "done", result=result)
    return job.id


def _segment_result(synthetic: bool = False) -> dict:  # type: ignore[type-arg]
    from liverfib.models.catalog import model_accuracy

    return {"status": "done", "route": "segment-3d", "liver_volume_ml": 812.4, "shape": [12, 64, 64],
            "spacing_mm": [3.0, 1.5, 1.5], "notes": [], "synthetic": synthetic,
            "model_accuracy": model_accuracy("mri_seg_default"),
            "files": ["volume.nii.gz", "liver_mask.nii.gz", "liver_mask_qc.png", "result.json"]}


def test_3d_job_page_loads_the_viewer_with_volume_and_mask(app_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import html
    import re

    client, store = app_store
    job_id = _done(store, tmp_path, "segment-3d", _segment_result())
    page = client.get(f"/jobs/{job_id}", headers=AUTH).text
    assert '<script src="/static/niivue-viewer.js" defer></script>' in page
    layers = json.loads(html.unescape(re.search(r'data-layers="([^"]+)"', page).group(1)))
    assert [(x["url"], x["colormap"]) for x in layers] == [
        (f"/jobs/{job_id}/files/volume.nii.gz", "gray"), (f"/jobs/{job_id}/files/liver_mask.nii.gz", "red")]
    assert "red = liver mask" in page and "liver 812.4 ml" in page
    figure = _segment_result()["model_accuracy"]["figure"]
    assert "[" in figure and html.escape(figure) in page  # the shipped model's measured figure, with CI
    assert 'id="synthetic"' not in page
    synthetic = _done(store, tmp_path, "segment-3d", _segment_result(synthetic=True))
    assert 'id="synthetic"' in client.get(f"/jobs/{synthetic}", headers=AUTH).text
    js = client.get("/static/niivue-viewer.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "connect-src 'self'" in js.headers["content-security-policy"]
    assert "Niivue" in client.get("/static/NIIVUE-LICENSES.txt").text


def test_mre_job_page_shows_the_stiffness_map_in_kpa(app_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import html
    import re

    from liverfib.models.catalog import model_accuracy

    client, store = app_store
    result = {"status": "done", "route": "mre", "stage": "F1", "stiffness_kpa": 3.1, "synthetic": True,
              "mre": {"mean stiffness (kPa)": "3.10"}, "notes": [], "model_accuracy": model_accuracy("mre_seg_default"),
              "files": ["sr.dcm", "mre.json", "liver_mask.nii.gz", "stiffness_kpa.nii.gz", "magnitude.nii.gz"]}
    page = client.get(f"/jobs/{_done(store, tmp_path, 'mre', result)}", headers=AUTH).text
    layers = json.loads(html.unescape(re.search(r'data-layers="([^"]+)"', page).group(1)))
    stiffness = next(x for x in layers if x["name"] == "stiffness_kpa.nii.gz")
    assert stiffness["colorbarVisible"] and stiffness["cal_max"] == 8.0 and stiffness["colormap"] == "jet"
    assert "0-8 kPa" in page and "blue = soft, red = stiff" in page
    assert 'id="synthetic"' in page and "SYNTHETIC" in page


def test_us_job_page_explains_colours_accuracy_and_device_caveat(tmp_path: Path, fast_models, make_us_image) -> None:  # type: ignore[no-untyped-def]
    import io

    import numpy as np
    from fastapi.testclient import TestClient
    from PIL import Image

    from liverfib.clinical.jobs import JobStore, JobWorker
    from liverfib.clinical.processor import make_processor
    from liverfib.clinical.web import WebConfig, create_app

    store = JobStore(tmp_path / "jobs.sqlite")
    worker = JobWorker(store, make_processor(fast_models.cfg, store=store, models=fast_models), poll_s=0.05).start()
    app = create_app(store, WebConfig(data_dir=tmp_path, token=TOKEN), on_job=lambda _i: worker.notify())
    buf = io.BytesIO()
    Image.fromarray(make_us_image(np.random.default_rng(0), "B")).save(buf, format="PNG")
    try:
        with TestClient(app) as client:
            r = client.post("/api/upload", files={"file": ("scan.png", buf.getvalue())}, headers=AUTH)
            assert worker.wait_idle(60)
            page = client.get(f"/jobs/{r.json()['jobs'][0]['id']}", headers=AUTH).text
    finally:
        worker.stop()
    assert 'id="legend"' in page and "green outline = liver" in page and "field of view" in page
    import html

    from liverfib.models.catalog import model_accuracy

    acc = model_accuracy("us_staging_default")
    assert "[" in acc["figure"] and html.escape(acc["figure"]) in page  # measured figure with its CI
    assert "confounded with the scanner" in page and html.escape(acc["caveat"]) in page
    assert "niivue-viewer.js" not in page  # 2D: no volume viewer loaded


# ------------------------------------------------------------------------------ headless Chromium
class _Browser:
    """Headless Chromium over W3C WebDriver (chromedriver, spoken with httpx), with WebGL2 on
    SwiftShader (software) so that NiiVue renders without a GPU."""

    ARGS = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1100",
            "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]

    def __init__(self, clin) -> None:  # type: ignore[no-untyped-def]
        import time

        import httpx

        chromium, driver = clin.require_tool("chromium", "chromium-browser"), clin.require_tool("chromedriver")
        port = clin.free_port()
        self.proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.http.get("/status").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "chromedriver did not start"
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium, "args": self.ARGS}}}}
        r = self.http.post("/session", json=caps)
        assert r.status_code == 200, r.text
        self.sid = r.json()["value"]["sessionId"]

    def cmd(self, method: str, path: str, body: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
        r = self.http.request(method, f"/session/{self.sid}{path}", json=body)
        assert r.status_code == 200, r.text
        return r.json()["value"]

    def js(self, script: str):  # type: ignore[no-untyped-def]
        return self.cmd("POST", "/execute/sync", {"script": script, "args": []})

    def find(self, css: str) -> str:
        return next(iter(self.cmd("POST", "/element", {"using": "css selector", "value": css}).values()))

    def login(self, base: str) -> None:
        self.cmd("POST", "/url", {"url": f"{base}/login"})
        self.cmd("POST", f"/element/{self.find('input[name=token]')}/value", {"text": TOKEN})
        self.cmd("POST", f"/element/{self.find('button[type=submit]')}/click", {})

    def canvas_png(self, css: str, path: Path):  # type: ignore[no-untyped-def]
        """Screenshot of one element -> ``(H, W, 3)`` uint8 (also written to ``path``)."""
        import base64
        import io

        import numpy as np
        from PIL import Image

        data = base64.b64decode(self.cmd("GET", f"/element/{self.find(css)}/screenshot"))
        path.write_bytes(data)
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def quit(self) -> None:
        try:
            self.http.delete(f"/session/{self.sid}")
        finally:
            self.http.close()
            self.proc.terminate()
            self.proc.wait(10)


def _wait_for_viewer(browser: _Browser, timeout_s: float = 90) -> str:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = browser.js("var c=document.getElementById('volume'); return c ? (c.dataset.state || '') : 'none'")
        if state in ("ready", "error", "none"):
            return str(state)
        time.sleep(0.25)
    return "timeout"


def _demo_ct_slab() -> bytes:
    """12 axial slices through the liver of the bundled demo CT (demo/ct/README.md), as .nii.gz."""
    import gzip

    import nibabel as nib

    img = nib.load(str(ROOT / "demo" / "ct" / "totalseg_ct.nii.gz"))
    return gzip.compress(img.slicer[:, :, 36:48].to_bytes())


def _mre_zip(tmp_path: Path) -> bytes:
    """One simulated MRE exam (SYNTHETIC phantom, DICOM) as a zip upload."""
    import io
    import zipfile

    from liverfib.mre.phantom import write_phantoms

    write_phantoms(tmp_path / "mre", 1, seed=3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted((tmp_path / "mre").rglob("*")):
            if f.is_file() and f.suffix != ".json":
                zf.write(f, f.relative_to(tmp_path / "mre").as_posix())
    return buf.getvalue()


def _check_mre_volumes(folder: Path, stiffness_kpa: float) -> None:
    """The viewer's stiffness volume lies on the grid of the measured ROI: its mean inside
    ``roi.nii.gz`` is the reported stiffness (area-weighted slice means = voxel mean)."""
    import nibabel as nib
    import numpy as np

    kpa = np.asanyarray(nib.load(str(folder / "stiffness_kpa.nii.gz")).dataobj)
    roi = np.asanyarray(nib.load(str(folder / "roi.nii.gz")).dataobj) > 0
    mag = nib.load(str(folder / "magnitude.nii.gz"))
    assert kpa.shape == roi.shape == mag.shape == nib.load(str(folder / "liver_mask.nii.gz")).shape
    assert float(kpa[roi].mean()) == pytest.approx(stiffness_kpa, rel=1e-3)


def _red(rgb):  # type: ignore[no-untyped-def]
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return int(((r > 120) & (r > g + 60) & (r > b + 60)).sum())


def test_volume_viewer_in_headless_chromium(tmp_path: Path, clin, fast_models) -> None:  # type: ignore[no-untyped-def]
    """Upload a NIfTI volume, let the worker segment it, open its page: NiiVue draws the volume with
    the red liver mask, the legend is there, and every request stays on the app's own origin."""
    import base64
    import os
    import time

    import httpx

    from liverfib.clinical.jobs import JobStore, JobWorker
    from liverfib.clinical.processor import make_processor
    from liverfib.clinical.web import WebConfig, create_app

    shots = Path(os.environ.get("LIVERFIB_ARTIFACTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    store = JobStore(tmp_path / "jobs.sqlite")
    worker = JobWorker(store, make_processor(fast_models.cfg, store=store, models=fast_models), poll_s=0.05).start()
    app = create_app(store, WebConfig(data_dir=tmp_path, token=TOKEN), on_job=lambda _i: worker.notify())
    port = clin.free_port()
    server, thread = clin.serve_app(app, port)
    base = f"http://127.0.0.1:{port}"
    browser = None
    try:
        ids = []
        for name, body in (("ct.nii.gz", _demo_ct_slab()), ("mre.zip", _mre_zip(tmp_path))):
            r = httpx.post(f"{base}/api/upload", files={"file": (name, body)}, headers=AUTH, timeout=60)
            assert r.status_code == 201, r.text
            ids.append(r.json()["jobs"][0]["id"])
        job_id, mre_id = ids
        assert worker.wait_idle(300)
        for i in ids:
            assert store.get(i).status == "done", store.get(i).error
        mre = store.get(mre_id)
        _check_mre_volumes(Path(mre.out_dir) / mre.id, mre.result["stiffness_kpa"])
        browser = _Browser(clin)
        browser.login(base)
        time.sleep(0.3)
        browser.cmd("POST", "/url", {"url": f"{base}/jobs/{job_id}"})
        state = _wait_for_viewer(browser)
        assert state == "ready", browser.js("var c=document.getElementById('volume'); return c && c.dataset.error")
        assert browser.js("return document.getElementById('volume').dataset.volumes") == "2"
        time.sleep(1.0)  # let NiiVue finish its first frames
        rgb = browser.canvas_png("#volume", shots / "volume_viewer.png")
        lit = int((rgb.max(axis=-1) > 40).sum())
        assert lit > 0.02 * rgb.shape[0] * rgb.shape[1], "the canvas is blank"
        red_with_mask = _red(rgb)
        assert red_with_mask > 0.01 * rgb.shape[0] * rgb.shape[1], "no red liver mask drawn"
        (shots / "volume_page.png").write_bytes(base64.b64decode(browser.cmd("GET", "/screenshot")))
        legend = browser.js("return document.getElementById('legend').innerText")
        assert "red = liver mask" in legend and "gray = the uploaded volume" in legend
        assert "How accurate the model is" in browser.js("return document.body.innerText")
        browser.cmd("POST", f"/element/{browser.find('input[data-layer-for=volume]')}/click", {})  # hide the mask
        time.sleep(0.5)
        assert _red(browser.canvas_png("#volume", shots / "volume_viewer_no_mask.png")) < red_with_mask / 4
        urls = browser.js("return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name))")
        assert all(u.startswith(base + "/") for u in urls), [u for u in urls if not u.startswith(base)]
        names = {u.rsplit("/", 1)[-1] for u in urls}
        assert {"niivue-viewer.js", "volume.nii.gz", "liver_mask.nii.gz"} <= names, names
        # MRE: magnitude + stiffness (kPa, jet, colour bar) + liver mask, SYNTHETIC banner
        browser.cmd("POST", "/url", {"url": f"{base}/jobs/{mre_id}"})
        assert _wait_for_viewer(browser) == "ready"
        assert browser.js("return document.getElementById('volume').dataset.volumes") == "3"
        time.sleep(1.0)
        rgb = browser.canvas_png("#volume", shots / "mre_viewer.png")
        r_, g_, b_ = (rgb[..., i].astype(int) for i in range(3))
        assert int(((b_ > 150) & (r_ < 90)).sum()) > 100 and _red(rgb) > 100  # both ends of the jet scale
        mask_box = browser.find("input[data-layer='2']")
        browser.cmd("POST", f"/element/{mask_box}/click", {})  # show the mask
        time.sleep(0.5)
        masked = browser.canvas_png("#volume", shots / "mre_viewer_mask.png")
        assert int((masked[..., 1] > 200).sum()) > int((rgb[..., 1] > 200).sum()) + 500  # green liver mask
        text = browser.js("return document.body.innerText")
        assert "SYNTHETIC" in text and "kPa" in browser.js("return document.getElementById('legend').innerText")
    finally:
        if browser is not None:
            browser.quit()
        server.should_exit = True
        thread.join(10)
        worker.stop()
