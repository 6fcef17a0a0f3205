"""The web viewer in a real browser: Debian's headless Chromium driven over the W3C WebDriver
protocol (chromedriver), spoken with httpx so that no browser-automation package is needed.

Checks: 401 without login, login form sets the session, result page shows the overlay whose
opacity follows the slider, the probability chart has one bar per stage. Screenshots are written
to ``$LIVERFIB_ARTIFACTS`` (default: the test's tmp folder). Skipped where chromium or
chromedriver is absent (a failure under CI=true).
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from pathlib import Path

from liverfib.clinical.jobs import JobStore, JobWorker
from liverfib.clinical.processor import make_processor
from liverfib.clinical.web import WebConfig, create_app

TOKEN = "browser-test-token-0123456789"


class WebDriver:
    """The few W3C WebDriver commands the test needs."""

    def __init__(self, port: int, chromium: str) -> None:
        import httpx

        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1000",
                                 "--disable-dev-shm-usage"],
                    },
                }
            }
        }
        r = self.http.post("/session", json=caps)
        assert r.status_code == 200, r.text
        self.sid = r.json()["value"]["sessionId"]

    def cmd(self, method: str, path: str, body: dict | None = None):  # type: ignore[no-untyped-def]
        r = self.http.request(method, f"/session/{self.sid}{path}", json=body if body is not None else None)
        assert r.status_code == 200, r.text
        return r.json()["value"]

    def go(self, url: str) -> None:
        self.cmd("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        value = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(value.values()))

    def js(self, script: str, *args):  # type: ignore[no-untyped-def]
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.cmd("GET", "/screenshot")))

    def quit(self) -> None:
        self.http.delete(f"/session/{self.sid}")
        self.http.close()


def test_viewer_in_headless_chromium(tmp_path: Path, clin, make_us_image, fast_models) -> None:
    import httpx
    import numpy as np
    from PIL import Image

    chromium, driver = clin.require_tool("chromium", "chromium-browser"), clin.require_tool("chromedriver")
    shots = Path(os.environ.get("LIVERFIB_ARTIFACTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    store = JobStore(tmp_path / "jobs.sqlite")
    worker = JobWorker(store, make_processor(fast_models.cfg, store=store, models=fast_models), poll_s=0.05).start()
    app = create_app(store, WebConfig(data_dir=tmp_path, token=TOKEN), on_job=lambda _i: worker.notify())
    port, driver_port = clin.free_port(), clin.free_port()
    server, thread = clin.serve_app(app, port)
    base = f"http://127.0.0.1:{port}"
    driver_proc = subprocess.Popen([driver, f"--port={driver_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wd = None
    try:
        png = tmp_path / "scan.png"
        Image.fromarray(make_us_image(np.random.default_rng(0), "B")).save(png)
        r = httpx.post(f"{base}/api/upload", files={"file": ("scan.png", png.read_bytes())},
                       headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 201, r.text
        job_id = r.json()["jobs"][0]["id"]
        assert worker.wait_idle(60)
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{driver_port}/status").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "chromedriver did not start"
            time.sleep(0.1)
        wd = WebDriver(driver_port, chromium)
        wd.go(f"{base}/jobs/{job_id}")
        assert "authentication required" in wd.js("return document.body.innerText")  # 401 page
        wd.go(f"{base}/login")
        field = wd.find("input[name=token]")
        wd.cmd("POST", f"/element/{field}/value", {"text": TOKEN})
        wd.cmd("POST", f"/element/{wd.find('button[type=submit]')}/click", {})
        time.sleep(0.3)
        assert "Jobs" in wd.js("return document.body.innerText")
        wd.screenshot(shots / "jobs.png")
        wd.go(f"{base}/jobs/{job_id}")
        assert wd.js("return document.getElementById('overlay').style.opacity") == "0.6"
        assert wd.js("return document.getElementById('overlay').complete && "
                     "document.getElementById('overlay').naturalWidth") > 0  # the overlay image loaded
        assert wd.js("return document.querySelectorAll('#probchart rect').length") == 5
        wd.js("var s=document.getElementById('opacity'); s.value=20; s.dispatchEvent(new Event('input'));")
        assert wd.js("return document.getElementById('overlay').style.opacity") == "0.2"
        # script and style come from static files under a CSP without 'unsafe-inline': the
        # slider above ran viewer.js; viewer.css colours the notice
        assert wd.js("return getComputedStyle(document.querySelector('.notice')).backgroundColor") == "rgb(255, 243, 205)"
        wd.screenshot(shots / "result.png")
        assert (shots / "result.png").read_bytes()[:4] == b"\x89PNG"
        logout = wd.find("form[action='/logout'] button")
        wd.cmd("POST", f"/element/{logout}/click", {})
        time.sleep(0.3)
        wd.go(f"{base}/jobs/{job_id}")
        assert "authentication required" in wd.js("return document.body.innerText")  # session revoked
    finally:
        if wd is not None:
            wd.quit()
        driver_proc.terminate()
        driver_proc.wait(10)
        server.should_exit = True
        thread.join(10)
        worker.stop()
