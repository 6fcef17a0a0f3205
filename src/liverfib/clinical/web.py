"""The web viewer: upload an image, DICOM file or zip; list jobs; view a result; download files.

Security:

* every page and API call needs ``Authorization: Bearer <LIVERFIB_TOKEN>`` or the session cookie
  set by ``POST /login`` (HttpOnly, SameSite=Strict); otherwise 401. Only ``/login`` is open;
* request bodies above ``max_upload_bytes`` get 413 (checked on Content-Length and while
  streaming, so a chunked upload cannot slip past);
* uploads are recognised by content (magic bytes), never by name or declared type: 415 otherwise;
* zip files: members with absolute paths, ``..``, drive letters or symlinks are refused (zip-slip),
  as are encrypted members, too many members, a total or per-member size above the limits, or a
  compression ratio above ``max_zip_ratio`` (zip bomb). Sizes are counted while extracting, so a
  lying header does not help. Any refusal is a 4xx with the reason; nothing is half-extracted.

Jobs are queued in the :class:`~liverfib.clinical.jobs.JobStore`; the worker runs them.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import shutil
import stat
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import (  # module level: FastAPI resolves these annotations by name
    HTTPException,
    Request,
    UploadFile,
)
from pydantic import BaseModel, ConfigDict

from liverfib.clinical.jobs import JobStore
from liverfib.io.dicom_dataset import read_dataset

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
    token: str
    max_upload_bytes: int = 64 * 1024 * 1024
    max_zip_members: int = 1000
    max_zip_total_bytes: int = 512 * 1024 * 1024
    max_zip_member_bytes: int = 64 * 1024 * 1024
    max_zip_ratio: float = 200.0


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


def safe_extract_zip(data: bytes, dest: Path, cfg: WebConfig) -> list[Path]:
    """Extract a zip into ``dest`` with zip-slip and zip-bomb checks; returns the extracted files.

    Raises:
        UploadRejected: corrupt zip, hostile member name, symlink, encryption, or size limits.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
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
        b"default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
    ),
]


class BodyLimit:
    """ASGI middleware: 413 for bodies above ``max_bytes`` (Content-Length or streamed count); adds
    the security headers to every response."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
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


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


# ------------------------------------------------------------------------------------- pages
_BASE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>liverfib</title>
{% if refresh %}<meta http-equiv="refresh" content="{{ refresh }}">{% endif %}
<style>body{font-family:sans-serif;max-width:70em;margin:1em auto;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}
.notice{background:#fff3cd;padding:.4em}.stack{position:relative;display:inline-block;width:480px;max-width:100%}
.stack img{display:block;max-width:640px;width:100%;image-rendering:pixelated}
.stack img.ov{position:absolute;left:0;top:0}</style></head><body>
<p class="notice">liverfib: research use only, not for diagnosis.</p>
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
<p><img id="mremap" src="/jobs/{{ j.id }}/files/mre_map.png" alt="stiffness map with colour bar" style="max-width:640px"></p>
{% for n in r.notes %}<p><i>{{ n }}</i></p>{% endfor %}
<h3>Downloads</h3><ul>{% for f in r.files %}<li><a href="/jobs/{{ j.id }}/files/{{ f }}">{{ f }}</a></li>{% endfor %}</ul>
{% elif r %}
<h2>Stage {{ r.stage }}</h2>
<div class="stack"><img src="/jobs/{{ j.id }}/files/image.png" alt="image">
<img class="ov" id="overlay" src="/jobs/{{ j.id }}/files/overlay_layer.png" alt="overlay" style="opacity:0.6"></div>
<p><label>Overlay opacity <input type="range" id="opacity" min="0" max="100" value="60"
 oninput="document.getElementById('overlay').style.opacity=this.value/100"></label></p>
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

_LOGIN = """<h1>liverfib login</h1>{% if failed %}<p>Wrong token.</p>{% endif %}
<form action="/login" method="post"><input type="password" name="token" placeholder="access token" required>
<button type="submit">Log in</button></form>"""


def _session_value(token: str) -> str:
    return hmac.new(token.encode(), b"liverfib-session-v1", hashlib.sha256).hexdigest()


def create_app(store: JobStore, cfg: WebConfig, *, on_job: Callable[[str], None] | None = None) -> Any:
    """Build the FastAPI app (wrapped in the body-size limit)."""
    import jinja2
    from fastapi import Depends, FastAPI
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
    from markupsafe import Markup
    from starlette.concurrency import run_in_threadpool

    if len(cfg.token) < 16:
        from liverfib.errors import ConfigError

        raise ConfigError("the web token must be at least 16 characters (set LIVERFIB_TOKEN)")
    env = jinja2.Environment(autoescape=True)
    base = env.from_string(_BASE)
    upload_root = cfg.data_dir / "uploads"
    results_root = cfg.data_dir / "results"
    session = _session_value(cfg.token)

    def page(template: str, refresh: int | None = None, status: int = 200, **ctx: Any) -> HTMLResponse:
        body = env.from_string(template).render(**ctx)
        return HTMLResponse(base.render(body=Markup(body), refresh=refresh), status)

    def authorised(request: Request) -> None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip(), cfg.token):
            return
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie, session):
            return
        raise HTTPException(401, "authentication required: Authorization: Bearer <token>, or log in at /login",
                            headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="liverfib", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/login", response_class=HTMLResponse)
    def login_form() -> HTMLResponse:
        return page(_LOGIN, failed=False)

    @app.post("/login")
    async def login(request: Request) -> Any:
        form = await request.form()
        token = str(form.get("token", ""))
        if not hmac.compare_digest(token, cfg.token):
            return page(_LOGIN, failed=True, status=401)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, session, httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return resp

    auth = [Depends(authorised)]

    @app.get("/", response_class=HTMLResponse, dependencies=auth)
    def index() -> HTMLResponse:
        jobs = store.list(limit=200)
        busy = any(j.status in ("queued", "running") for j in jobs)
        return page(_INDEX, refresh=3 if busy else None, jobs=jobs)

    @app.get("/api/jobs", dependencies=auth)
    def api_jobs(limit: int = 200, status: str | None = None) -> JSONResponse:
        return JSONResponse([j.as_dict() for j in store.list(limit=max(1, min(limit, 5000)), status=status)])

    @app.get("/api/jobs/{job_id}", dependencies=auth)
    def api_job(job_id: str) -> JSONResponse:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return JSONResponse(job.as_dict())

    async def _accept(file: UploadFile) -> dict[str, Any]:
        data = await file.read()
        try:
            jobs, skipped = await run_in_threadpool(
                _queue_upload, data, file.filename or "upload", store, cfg, upload_root, results_root
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
        return page(_JOB, refresh=refresh, j=job, r=r, downloads=downloads)

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

    return BodyLimit(app, cfg.max_upload_bytes)


def _queue_upload(
    data: bytes, filename: str, store: JobStore, cfg: WebConfig, upload_root: Path, results_root: Path
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Sniff, store and queue one upload; returns (jobs, skipped files)."""


    if not data:
        raise UploadRejected(400, "empty upload")
    kind = sniff_upload(data[:512])
    if kind is None:
        raise UploadRejected(415, "unsupported content: expected DICOM, PNG, JPEG, BMP, TIFF or a zip of them")
    display = re.sub(r"[^A-Za-z0-9._ -]", "_", Path(filename.replace("\\", "/")).name)[:80] or "upload"
    folder = upload_root / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        return _queue_files(data, kind, display, folder, store, cfg, results_root)
    except UploadRejected:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _queue_files(
    data: bytes, kind: str, display: str, folder: Path, store: JobStore, cfg: WebConfig, results_root: Path
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:

    from liverfib.clinical.routing import route_dataset

    if kind == "zip":
        files = safe_extract_zip(data, folder / "zip", cfg)
        members = [(f, str(f.relative_to(folder / "zip"))) for f in files]
    else:
        ext = {"dicom": ".dcm", "zip": ".zip"}.get(kind, "." + kind)
        path = folder / f"input{ext}"
        path.write_bytes(data)
        members = [(path, display)]
    jobs: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    planned: list[tuple[str, Path, str, str]] = []  # (route, path, name, series)
    for path, name in members:
        with path.open("rb") as fh:
            member_kind = sniff_upload(fh.read(512))
        if member_kind is None or member_kind == "zip":
            skipped.append({"name": name, "reason": "not an image (nested zips are not opened)"})
            continue
        route, series = "us-staging", name
        if member_kind == "dicom":
            try:
                ds = read_dataset(path, stop_before_pixels=True)
                route, reason = route_dataset(ds)
            except Exception as exc:  # pydicom raises many types on corrupt headers
                if kind != "zip":
                    raise UploadRejected(400, f"corrupt DICOM header ({type(exc).__name__}: {exc})") from None
                skipped.append({"name": name, "reason": f"corrupt DICOM header ({type(exc).__name__})"})
                continue
            if route == "unknown":
                if kind != "zip":
                    raise UploadRejected(415, reason)
                skipped.append({"name": name, "reason": reason})
                continue
            series = str(ds.get("SeriesInstanceUID", "")) or name
        planned.append((route, path, name, series))
    mre = any(route == "mre" for route, *_ in planned)
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
        job = store.add(origin="web", kind=route, input_path=target, out_dir=results_root, name=name)
        jobs.append({"id": job.id, "name": name, "kind": route, "status": job.status})
    if not jobs:
        what = "; ".join(f"{s['name']}: {s['reason']}" for s in skipped[:5])
        raise UploadRejected(415 if kind != "zip" else 400, f"nothing to analyse in the upload ({what})")
    return jobs, skipped
