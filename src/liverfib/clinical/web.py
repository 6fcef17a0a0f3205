"""The web viewer: upload an image, DICOM file or zip; list jobs; view a result; download files.

Security (see SECURITY.md for the threat model and the tests):

* every page and API call needs ``Authorization: Bearer <LIVERFIB_TOKEN>`` or a session cookie
  from ``POST /login`` (random, HttpOnly, SameSite=Strict, Secure over HTTPS, kept server-side,
  expires after ``session_ttl_s``, revoked by ``POST /logout``); otherwise 401. Only ``/login``
  and the two static files are open. Repeated wrong tokens from one client (login form or
  Bearer header) get 429 with Retry-After for ``login_window_s``;
* request bodies above ``max_upload_bytes`` get 413 (checked on Content-Length and while
  streaming, so a chunked upload cannot slip past); uploads are streamed to disk, never held whole
  in memory; an upload is refused (429) before its body is read when ``max_queued_jobs`` jobs wait;
* uploads are recognised by content (magic bytes), never by name or declared type: 415 otherwise;
  every image is decoded before the 201: a truncated or corrupt image is a 400, one above
  ``max_image_pixels`` (decompression bomb) a 413, a DICOM file without pixel data a 422;
* DICOM uploads are de-identified before they are stored; the API never returns server paths,
  patient names, IDs or dates;
* every response, errors included, carries the security headers; the CSP allows no inline script
  or style (the viewer's script and style are static files);
* zip files: members with absolute paths, ``..``, drive letters or symlinks are refused (zip-slip),
  as are encrypted members, too many members, a total or per-member size above the limits, or a
  compression ratio above ``max_zip_ratio`` (zip bomb). Sizes are counted while extracting, so a
  lying header does not help. Any refusal is a 4xx with the reason; nothing is half-extracted.

Jobs are queued in the :class:`~liverfib.clinical.jobs.JobStore`; the worker runs them.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import shutil
import stat
import threading
import time
import uuid
import zipfile
from collections import OrderedDict, deque
from collections.abc import Callable
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from fastapi import (  # module level: FastAPI resolves these annotations by name
    HTTPException,
    Request,
    UploadFile,
)
from pydantic import BaseModel, ConfigDict, Field

from liverfib.clinical.jobs import JobStore
from liverfib.errors import InputError

__all__ = ["WebConfig", "UploadRejected", "create_app", "safe_extract_zip", "sniff_upload"]

COOKIE = "liverfib_session"
#: Files of a job folder that may be downloaded, with their media types.
DOWNLOADS = {
    "report.html": "text/html",
    "report.pdf": "application/pdf",
    "seg.dcm": "application/dicom",
    "sr.dcm": "application/dicom",
    "sc.dcm": "application/dicom",
    "result.json": "application/json",
    "image.png": "image/png",
    "overlay.png": "image/png",
    "overlay_layer.png": "image/png",
    "mre_map.png": "image/png",
    "mre.json": "application/json",
}


class WebConfig(BaseModel):
    """Settings of the web app (frozen; unknown keys rejected). Sizes in bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path
    token: str = Field(min_length=16)
    max_upload_bytes: int = Field(64 * 1024 * 1024, gt=0)
    max_zip_members: int = Field(1000, gt=0)
    max_zip_total_bytes: int = Field(512 * 1024 * 1024, gt=0)
    max_zip_member_bytes: int = Field(64 * 1024 * 1024, gt=0)
    max_zip_ratio: float = Field(200.0, gt=1)
    #: Decoded pixels per image (decompression-bomb guard).
    max_image_pixels: int = Field(40_000_000, gt=0)
    #: Queued jobs above which uploads get 429.
    max_queued_jobs: int = Field(500, gt=0)
    session_ttl_s: float = Field(8 * 3600.0, gt=0)
    #: Wrong tokens per client within ``login_window_s`` before 429.
    login_max_failures: int = Field(5, gt=0)
    login_window_s: float = Field(60.0, gt=0)
    #: De-identification secret for DICOM uploads (default: kept in ``data_dir/deid.salt``).
    deid_salt: str | None = None


class UploadRejected(Exception):
    """An upload that is refused, with the HTTP status and the reason shown to the user."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


# ---------------------------------------------------------------------------------- sniffing
def sniff_upload(head: bytes) -> str | None:
    """``"dicom"``, ``"zip"``, a raster format name (``"png"``, ...) or ``None`` from the first bytes."""
    from liverfib.io.raster import sniff_format

    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    return sniff_format(head)


def _safe_member_path(name: str) -> PurePosixPath:
    raw = name.replace("\\", "/")
    path = PurePosixPath(raw)
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw) or ".." in path.parts or "\0" in raw:
        raise UploadRejected(400, f"zip member {name[:80]!r} points outside the upload (zip-slip); refused")
    return path


def safe_extract_zip(source: Path | BinaryIO, dest: Path, cfg: WebConfig) -> list[Path]:
    """Extract a zip into ``dest`` with zip-slip and zip-bomb checks; returns the extracted files.

    Raises:
        UploadRejected: corrupt zip, hostile member name, symlink, encryption, or size limits.
    """
    try:
        zf = zipfile.ZipFile(source)
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise UploadRejected(400, f"corrupt zip file ({exc})") from None
    if len(infos) > cfg.max_zip_members:
        raise UploadRejected(413, f"zip holds {len(infos)} members; at most {cfg.max_zip_members} allowed")
    declared = sum(i.file_size for i in infos)
    if declared > cfg.max_zip_total_bytes:
        raise UploadRejected(
            413, f"zip expands to {declared} bytes, above the limit of {cfg.max_zip_total_bytes} (zip bomb?)"
        )
    plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    for info in infos:
        rel = _safe_member_path(info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UploadRejected(400, f"zip member {info.filename[:80]!r} is a symbolic link; refused")
        if info.flag_bits & 0x1:
            raise UploadRejected(400, f"zip member {info.filename[:80]!r} is encrypted; refused")
        if info.is_dir() or not rel.parts or any(p.startswith(".") or p == "__MACOSX" for p in rel.parts):
            continue
        if info.file_size > cfg.max_zip_member_bytes:
            raise UploadRejected(413, f"zip member {info.filename[:80]!r} is {info.file_size} bytes; too large")
        if info.file_size > 1024 * 1024 and info.file_size > cfg.max_zip_ratio * max(1, info.compress_size):
            raise UploadRejected(
                413, f"zip member {info.filename[:80]!r} compresses {info.file_size / max(1, info.compress_size):.0f}:1 (zip bomb?); refused"
            )
        plan.append((info, rel))
    root = dest.resolve()
    written: list[Path] = []
    total = 0
    try:
        for info, rel in plan:
            target = (root / Path(*rel.parts)).resolve()
            if root not in target.parents:
                raise UploadRejected(400, f"zip member {info.filename[:80]!r} escapes the upload folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            with zf.open(info) as src, target.open("wb") as out:
                while chunk := src.read(1 << 20):
                    size += len(chunk)
                    total += len(chunk)
                    if size > min(info.file_size, cfg.max_zip_member_bytes) or total > cfg.max_zip_total_bytes:
                        raise UploadRejected(413, f"zip member {info.filename[:80]!r} expands beyond its declared size or the limit (zip bomb?)")
                    out.write(chunk)
            written.append(target)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise UploadRejected(400, f"corrupt zip member ({type(exc).__name__}: {exc})") from None
    except UploadRejected:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return written


# ------------------------------------------------------------------------------------ body limit
class _TooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body parser passes it on as 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"upload larger than {max_bytes} bytes; refused")


#: Sent with every response (pure ASGI, so that no task group wraps the body stream).
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"cache-control", b"no-store"),
]
_UPLOAD_PATHS = ("/api/upload", "/upload")


class BodyLimit:
    """ASGI middleware: 413 for bodies above ``max_bytes`` (Content-Length or streamed count); adds
    the security headers to every response. ``precheck(scope)`` may refuse an upload before its
    body is read: it returns ``(status, detail, headers)`` or ``None``."""

    def __init__(
        self,
        app: Any,
        max_bytes: int,
        precheck: Callable[[dict[str, Any]], tuple[int, str, dict[str, str]] | None] | None = None,
    ) -> None:
        self.app, self.max_bytes, self.precheck = app, max_bytes, precheck

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.precheck is not None and scope.get("method") == "POST" and scope.get("path") in _UPLOAD_PATHS:
            refused = self.precheck(scope)
            if refused is not None:
                status, detail, extra = refused
                await _send_json(send, status, {"detail": detail}, extra)
                return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _send_json(send, 413, {"detail": f"upload larger than {self.max_bytes} bytes; refused"})
            return
        seen = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS]}
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, {"detail": f"upload larger than {self.max_bytes} bytes; refused"})


async def _send_json(send: Any, status: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *_SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": data})


# ------------------------------------------------------------------------------------- pages
_BASE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>liverfib</title>
{% if refresh %}<meta http-equiv="refresh" content="{{ refresh }}">{% endif %}
<link rel="stylesheet" href="/static/viewer.css"><script src="/static/viewer.js"></script></head><body>
<p class="notice">liverfib: research use only, not for diagnosis.
{% if logout %}<form class="inline" action="/logout" method="post"><button type="submit">Log out</button></form>{% endif %}</p>
{{ body }}</body></html>"""

_INDEX = """<h1>liverfib</h1>
<form action="/upload" method="post" enctype="multipart/form-data">
<input type="file" name="file" required> <button type="submit">Upload image, DICOM or zip</button>
</form>
<h2>Jobs</h2><table id="jobs"><tr><th>job</th><th>name</th><th>origin</th><th>kind</th><th>status</th><th>stage</th><th>reason</th></tr>
{% for j in jobs %}<tr><td><a href="/jobs/{{ j.id }}">{{ j.id }}</a></td><td>{{ j.name or '' }}</td>
<td>{{ j.origin }}</td><td>{{ j.kind }}</td><td class="status">{{ j.status }}</td>
<td>{{ (j.result or {}).get('stage', '') }}</td><td>{{ j.error or '' }}</td></tr>
{% endfor %}</table>"""

_JOB = """<p><a href="/">&larr; jobs</a></p><h1>Job {{ j.id }}: {{ j.name or '' }}</h1>
<p>Status: <b id="status">{{ j.status }}</b> {% if j.error %}&mdash; {{ j.error }}{% endif %}</p>
{% if r and r.route == 'mre' %}
<h2>MR elastography: {{ '%.2f'|format(r.stiffness_kpa) }} kPa, stage {{ r.stage }}</h2>
<table>{% for k, v in r.mre.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
<p><img id="mremap" class="map" src="/jobs/{{ j.id }}/files/mre_map.png" alt="stiffness map with colour bar"></p>
{% for n in r.notes %}<p><i>{{ n }}</i></p>{% endfor %}
<h3>Downloads</h3><ul>{% for f in r.files %}<li><a href="/jobs/{{ j.id }}/files/{{ f }}">{{ f }}</a></li>{% endfor %}</ul>
{% elif r %}
<h2>Stage {{ r.stage }}</h2>
<div class="stack"><img src="/jobs/{{ j.id }}/files/image.png" alt="image">
<img class="ov" id="overlay" src="/jobs/{{ j.id }}/files/overlay_layer.png" alt="overlay"></div>
<p><label>Overlay opacity <input type="range" id="opacity" min="0" max="100" value="60"></label></p>
<h3>Stage probabilities</h3>
<svg id="probchart" width="360" height="{{ 24 * (r.probabilities|length) + 10 }}" role="img" aria-label="stage probabilities">
{% for s, p in r.probabilities.items() %}
<text x="0" y="{{ 24 * loop.index0 + 18 }}">{{ s }}</text>
<rect x="30" y="{{ 24 * loop.index0 + 4 }}" width="{{ (p * 260)|round(1) }}" height="18" fill="#4a7bd0"></rect>
<text x="{{ 36 + (p * 260)|round(1) }}" y="{{ 24 * loop.index0 + 18 }}">{{ '%.2f'|format(p) }}</text>
{% endfor %}</svg>
<p>P(&ge;F2) {{ '%.2f'|format(r.p_ge_f2) }} &middot; P(&ge;F3) {{ '%.2f'|format(r.p_ge_f3) }} &middot; P(F4) {{ '%.2f'|format(r.p_f4) }}</p>
{% if r.warning %}<p><b>Warning:</b> {{ r.warning }}</p>{% endif %}
{% for n in r.notes %}<p><i>{{ n }}</i></p>{% endfor %}
<h3>Downloads</h3><ul>{% for f in downloads %}<li><a href="/jobs/{{ j.id }}/files/{{ f }}">{{ f }}</a></li>{% endfor %}</ul>
{% endif %}"""

_LOGIN = """<h1>liverfib login</h1>{% if failed %}<p>{{ failed }}</p>{% endif %}
<form action="/login" method="post"><input type="password" name="token" placeholder="access token" required>
<button type="submit">Log in</button></form>"""


class _Throttle:
    """Wrong tokens per client in a sliding window (OWASP: limit failed authentication attempts)."""

    def __init__(self, max_failures: int, window_s: float, max_clients: int = 10_000) -> None:
        self.max_failures, self.window_s, self.max_clients = max_failures, window_s, max_clients
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0 = now)."""
        now = time.monotonic()
        with self._lock:
            times = self._fails.get(client)
            if not times:
                return 0.0
            while times and now - times[0] > self.window_s:
                times.popleft()
            if len(times) < self.max_failures:
                return 0.0
            return max(0.0, self.window_s - (now - times[0]))

    def fail(self, client: str) -> None:
        with self._lock:
            self._fails.setdefault(client, deque(maxlen=self.max_failures)).append(time.monotonic())
            self._fails.move_to_end(client)
            while len(self._fails) > self.max_clients:
                self._fails.popitem(last=False)

    def reset(self, client: str) -> None:
        with self._lock:
            self._fails.pop(client, None)


class _Sessions:
    """Server-side sessions: random ids that expire after ``ttl_s`` and can be revoked (a restart
    revokes all of them)."""

    def __init__(self, ttl_s: float, max_sessions: int = 1000) -> None:
        self.ttl_s, self.max_sessions = ttl_s, max_sessions
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def new(self) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._expiry[sid] = time.monotonic() + self.ttl_s
            while len(self._expiry) > self.max_sessions:
                self._expiry.popitem(last=False)  # the oldest login goes first
        return sid

    def valid(self, sid: str) -> bool:
        if not sid:
            return False
        with self._lock:
            expiry = self._expiry.get(sid)
            if expiry is None:
                return False
            if time.monotonic() > expiry:
                del self._expiry[sid]
                return False
            return True

    def revoke(self, sid: str) -> None:
        with self._lock:
            self._expiry.pop(sid, None)


def _static(name: str) -> bytes:
    return resources.files("liverfib.clinical").joinpath("static", name).read_bytes()


def _client(scope_or_request: Any) -> str:
    client = scope_or_request.get("client") if isinstance(scope_or_request, dict) else scope_or_request.client
    return str(client[0]) if client else "unknown"


def create_app(store: JobStore, cfg: WebConfig, *, on_job: Callable[[str], None] | None = None) -> Any:
    """Build the FastAPI app (wrapped in the body-size limit and the upload gate)."""
    import jinja2
    from fastapi import Depends, FastAPI
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
    from markupsafe import Markup
    from starlette.concurrency import run_in_threadpool

    from liverfib.clinical.deidentify import load_or_create_salt

    env = jinja2.Environment(autoescape=True)
    base = env.from_string(_BASE)
    upload_root = cfg.data_dir / "uploads"
    results_root = cfg.data_dir / "results"
    salt = cfg.deid_salt or load_or_create_salt(cfg.data_dir / "deid.salt")
    sessions = _Sessions(cfg.session_ttl_s)
    throttle = _Throttle(cfg.login_max_failures, cfg.login_window_s)
    statics = {"viewer.js": (_static("viewer.js"), "text/javascript"), "viewer.css": (_static("viewer.css"), "text/css")}

    def page(template: str, refresh: int | None = None, status: int = 200, **ctx: Any) -> HTMLResponse:
        body = env.from_string(template).render(**ctx)
        return HTMLResponse(base.render(body=Markup(body), refresh=refresh, logout=ctx.get("logout", False)), status)

    def too_many(client: str) -> HTTPException | None:
        wait = throttle.retry_after(client)
        if wait <= 0:
            return None
        return HTTPException(429, f"too many wrong tokens; try again in {wait:.0f} s",
                             headers={"Retry-After": str(max(1, round(wait)))})

    def check_auth(authorization: str, cookie: str, client: str) -> HTTPException | None:
        """None when authorised, else the error to answer (401, or 429 after repeated failures)."""
        if authorization.lower().startswith("bearer "):
            refused = too_many(client)
            if refused is not None:
                return refused
            if hmac.compare_digest(authorization[7:].strip().encode(), cfg.token.encode()):
                return None
            throttle.fail(client)
            return HTTPException(401, "wrong token", headers={"WWW-Authenticate": "Bearer"})
        if sessions.valid(cookie):
            return None
        return HTTPException(401, "authentication required: Authorization: Bearer <token>, or log in at /login",
                             headers={"WWW-Authenticate": "Bearer"})

    def authorised(request: Request) -> None:
        error = check_auth(request.headers.get("authorization", ""), request.cookies.get(COOKIE, ""), _client(request))
        if error is not None:
            raise error

    def precheck(scope: dict[str, Any]) -> tuple[int, str, dict[str, str]] | None:
        """Before an upload's body is read: authorised, and room in the queue."""
        from http.cookies import SimpleCookie

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is simply no session
            jar = SimpleCookie()
        cookie = jar[COOKIE].value if COOKIE in jar else ""
        error = check_auth(headers.get("authorization", ""), cookie, _client(scope))
        if error is not None:
            return error.status_code, str(error.detail), dict(error.headers or {})
        if store.count_queued() >= cfg.max_queued_jobs:
            return 429, f"the job queue is full ({cfg.max_queued_jobs} waiting); try again later", {"Retry-After": "30"}
        return None

    app = FastAPI(title="liverfib", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in statics:
            raise HTTPException(404, "not found")
        data, media = statics[name]
        return Response(data, media_type=media)

    @app.get("/login", response_class=HTMLResponse)
    def login_form() -> HTMLResponse:
        return page(_LOGIN, failed="")

    @app.post("/login")
    async def login(request: Request) -> Any:
        client = _client(request)
        refused = too_many(client)
        if refused is not None:
            raise refused
        form = await request.form()
        token = str(form.get("token", ""))
        if not hmac.compare_digest(token.encode(), cfg.token.encode()):
            throttle.fail(client)
            return page(_LOGIN, failed="Wrong token.", status=401)
        throttle.reset(client)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(
            COOKIE, sessions.new(), max_age=int(cfg.session_ttl_s), httponly=True, samesite="strict",
            secure=request.url.scheme == "https",
        )
        return resp

    @app.post("/logout")
    def logout(request: Request) -> Any:
        sessions.revoke(request.cookies.get(COOKIE, ""))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, httponly=True, samesite="strict")
        return resp

    auth = [Depends(authorised)]

    @app.get("/", response_class=HTMLResponse, dependencies=auth)
    def index() -> HTMLResponse:
        jobs = store.list(limit=200)
        busy = any(j.status in ("queued", "running") for j in jobs)
        return page(_INDEX, refresh=3 if busy else None, jobs=[j.public_dict() for j in jobs], logout=True)

    @app.get("/api/jobs", dependencies=auth)
    def api_jobs(limit: int = 200, status: str | None = None) -> JSONResponse:
        jobs = store.list(limit=max(1, min(limit, 5000)), status=status)
        return JSONResponse([j.public_dict() for j in jobs])

    @app.get("/api/jobs/{job_id}", dependencies=auth)
    def api_job(job_id: str) -> JSONResponse:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return JSONResponse(job.public_dict())

    async def _accept(file: UploadFile) -> dict[str, Any]:
        try:
            jobs, skipped = await run_in_threadpool(
                _queue_upload, file.file, file.filename or "upload", store, cfg, upload_root, results_root, salt
            )
        except UploadRejected as exc:
            raise HTTPException(exc.status, exc.reason) from None
        for j in jobs:
            if on_job is not None:
                on_job(j["id"])
        return {"jobs": jobs, "skipped": skipped}

    @app.post("/api/upload", dependencies=auth, status_code=201)
    async def api_upload(file: UploadFile) -> dict[str, Any]:
        return await _accept(file)

    @app.post("/upload", dependencies=auth)
    async def form_upload(file: UploadFile) -> Any:
        await _accept(file)
        return RedirectResponse("/", status_code=303)

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, dependencies=auth)
    def job_page(job_id: str) -> HTMLResponse:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        r = job.result if job.status == "done" else None
        downloads = [f for f in DOWNLOADS if f not in ("overlay_layer.png", "mre_map.png", "mre.json")]
        refresh = 2 if job.status in ("queued", "running") else None
        public = job.public_dict()
        return page(_JOB, refresh=refresh, j=public, r=public["result"] if r else None, downloads=downloads, logout=True)

    @app.get("/jobs/{job_id}/files/{name}", dependencies=auth)
    def job_file(job_id: str, name: str) -> FileResponse:
        job = store.get(job_id)
        if job is None or name not in DOWNLOADS:
            raise HTTPException(404, f"no file {name!r} for job {job_id!r}")
        folder = Path(job.out_dir) / job.id
        path = folder / name
        if not path.is_file() and name.startswith("report.") and job.status == "done" and job.result:
            from liverfib.clinical.report import write_report

            write_report(job.result, folder)  # reports are made on first request when not yet there
        if not path.is_file():
            raise HTTPException(404, f"{name} is not available for job {job_id} (status {job.status})")
        return FileResponse(path, media_type=DOWNLOADS[name], filename=name)

    return BodyLimit(app, cfg.max_upload_bytes, precheck)


def _stream_to_disk(src: BinaryIO, path: Path, max_bytes: int) -> int:
    """Copy ``src`` to ``path`` in 1 MiB chunks, stopping with 413 past ``max_bytes``; returns the size."""
    size = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        while chunk := src.read(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise UploadRejected(413, f"upload larger than {max_bytes} bytes; refused")
            out.write(chunk)
    return size


def _queue_upload(
    src: BinaryIO,
    filename: str,
    store: JobStore,
    cfg: WebConfig,
    upload_root: Path,
    results_root: Path,
    salt: str,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Stream one upload to disk, sniff, validate, de-identify and queue it; returns (jobs, skipped)."""
    display = re.sub(r"[^A-Za-z0-9._ -]", "_", Path(filename.replace("\\", "/")).name)[:80] or "upload"
    folder = upload_root / uuid.uuid4().hex
    raw = folder / "upload.part"
    try:
        src.seek(0)
        if _stream_to_disk(src, raw, cfg.max_upload_bytes) == 0:
            raise UploadRejected(400, "empty upload")
        with raw.open("rb") as fh:
            kind = sniff_upload(fh.read(512))
        if kind is None:
            raise UploadRejected(415, "unsupported content: expected DICOM, PNG, JPEG, BMP, TIFF or a zip of them")
        return _queue_files(raw, kind, display, folder, store, cfg, results_root, salt)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _check_raster(path: Path, kind: str, max_pixels: int) -> None:
    """Decode a raster file from disk (never read whole into memory first); 413 above
    ``max_pixels`` (checked on the header, before decoding), 400 when truncated or corrupt."""
    import warnings

    from PIL import Image as PILImage

    name = kind.upper()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise UploadRejected(
                        413, f"{name} of {width}x{height} pixels is above the limit of {max_pixels} (decompression bomb?)"
                    )
                img.load()
    except UploadRejected:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise UploadRejected(413, f"{name} is above the decompression-bomb limit") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc).split(" <_io.")[0].replace(str(path), "upload")
        raise UploadRejected(400, f"corrupt or truncated {name} ({reason})") from None
    if min(width, height) < 8:
        raise UploadRejected(400, f"{name} is {width}x{height} pixels; need at least 8 on each side")


def _validate_member(path: Path, kind: str, cfg: WebConfig, salt: str) -> tuple[str, str]:
    """Decode one uploaded image; DICOM is de-identified in place. Returns ``(route, series key)``.

    Raises:
        UploadRejected: 400 corrupt/truncated, 413 too many pixels, 415 not analysed, 422 no pixels.
    """
    if kind != "dicom":
        _check_raster(path, kind, cfg.max_image_pixels)
        return "us-staging", ""
    from liverfib.clinical.deidentify import deidentify_on_intake
    from liverfib.clinical.dicom_out import save_dataset
    from liverfib.clinical.routing import route_dataset
    from liverfib.io.dicom_dataset import read_dataset

    try:
        ds = read_dataset(path)
    except Exception as exc:  # pydicom raises many types on corrupt headers
        raise UploadRejected(400, f"corrupt DICOM header ({type(exc).__name__}: {exc})") from None
    route, reason = route_dataset(ds)
    if route == "unknown":
        raise UploadRejected(415, reason)
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise UploadRejected(422, "DICOM file without pixel data: nothing to analyse")
    try:
        n_pixels = int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        raise UploadRejected(400, "DICOM file without valid Rows/Columns") from None
    if n_pixels > cfg.max_image_pixels:
        raise UploadRejected(413, f"DICOM image has {n_pixels} pixels, above the limit of {cfg.max_image_pixels}")
    try:
        _ = ds.pixel_array
        deidentify_on_intake(ds, salt=salt)
    except InputError as exc:
        raise UploadRejected(400, str(exc)) from None
    except Exception as exc:  # pixel decoders raise many types on truncated or corrupt data
        raise UploadRejected(400, f"cannot decode the DICOM pixel data ({type(exc).__name__}: {exc})") from None
    save_dataset(ds, path)
    return route, str(ds.get("SeriesInstanceUID", ""))


def _queue_files(
    raw: Path,
    kind: str,
    display: str,
    folder: Path,
    store: JobStore,
    cfg: WebConfig,
    results_root: Path,
    salt: str,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    if kind == "zip":
        with raw.open("rb") as fh:
            files = safe_extract_zip(fh, folder / "zip", cfg)
        raw.unlink()
        members = [(f, str(f.relative_to(folder / "zip"))) for f in files]
    else:
        path = raw.rename(folder / f"input.{'dcm' if kind == 'dicom' else kind}")
        members = [(path, display)]
    skipped: list[dict[str, str]] = []
    planned: list[tuple[str, Path, str, str]] = []  # (route, path, name, series)
    for path, name in members:
        with path.open("rb") as fh:
            member_kind = sniff_upload(fh.read(512))
        if member_kind is None or member_kind == "zip":
            skipped.append({"name": name, "reason": "not an image (nested zips are not opened)"})
            path.unlink()
            continue
        try:
            route, series = _validate_member(path, member_kind, cfg, salt)
        except UploadRejected as exc:
            if kind != "zip":
                raise
            skipped.append({"name": name, "reason": exc.reason})
            path.unlink()
            continue
        planned.append((route, path, name, series or name))
    if not planned:
        what = "; ".join(f"{s['name']}: {s['reason']}" for s in skipped[:5])
        raise UploadRejected(400, f"nothing to analyse in the upload ({what})")
    mre = any(route == "mre" for route, *_ in planned)
    work: list[tuple[str, Path, str]] = []
    queued: set[str] = set()
    for route, path, name, series in planned:
        target = path
        if mre and route in ("mre", "mri"):  # an MRE exam: all its MR series form one job
            route, target, name, series = "mre", path.parents[len(Path(name).parts) - 1], "MRE exam", "mre-exam"
        elif route == "mri":
            target = path.parent
        if route != "us-staging":
            if series in queued:
                continue
            queued.add(series)
        work.append((route, target, name))
    if store.count_queued() + len(work) > cfg.max_queued_jobs:
        raise UploadRejected(429, f"the job queue is full ({cfg.max_queued_jobs} waiting); try again later")
    jobs: list[dict[str, Any]] = []
    for route, target, name in work:
        job = store.add(origin="web", kind=route, input_path=target, out_dir=results_root, name=name)
        jobs.append({"id": job.id, "name": name, "kind": route, "status": job.status})
    return jobs, skipped
