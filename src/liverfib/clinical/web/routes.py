"""The routes of the web app: login/logout and static files, job pages and API, uploads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

# module level: FastAPI resolves these annotations by name
from fastapi import FastAPI, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from liverfib.clinical.jobs import JobStore
from liverfib.clinical.web.auth import COOKIE, Gate, client_of
from liverfib.clinical.web.config import UploadRejected
from liverfib.clinical.web.pages import DOWNLOADS, Pages
from liverfib.clinical.web.viewer import VOLUME_FILES

__all__ = ["add_session_routes", "add_job_routes", "add_upload_routes"]

#: Queues one upload (file object, client's file name); returns ``(jobs, skipped)``.
Intake = Callable[[BinaryIO, str], tuple[list[dict[str, Any]], list[dict[str, str]]]]


def add_session_routes(app: FastAPI, gate: Gate, pages: Pages) -> None:
    """The open routes: the static files, the login form, login and logout."""

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        return pages.static(name)

    @app.get("/login", response_class=HTMLResponse)
    def login_form() -> HTMLResponse:
        return pages.login()

    @app.post("/login")
    async def login(request: Request) -> Any:
        client = client_of(request)
        refused = gate.too_many(client)
        if refused is not None:
            raise refused
        form = await request.form()
        if not gate.token_matches(str(form.get("token", ""))):
            gate.throttle.fail(client)
            return pages.login("Wrong token.", status=401)
        gate.throttle.reset(client)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(
            COOKIE, gate.sessions.new(), max_age=int(gate.cfg.session_ttl_s), httponly=True, samesite="strict",
            secure=request.url.scheme == "https",
        )
        return resp

    @app.post("/logout")
    def logout(request: Request) -> Any:
        gate.sessions.revoke(request.cookies.get(COOKIE, ""))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, httponly=True, samesite="strict")
        return resp


def add_job_routes(app: FastAPI, store: JobStore, pages: Pages, auth: list[Any]) -> None:
    """The job list and job pages (HTML and JSON), and the download of a job's files."""

    @app.get("/", response_class=HTMLResponse, dependencies=auth)
    def index() -> HTMLResponse:
        jobs = store.list(limit=200)
        busy = any(j.status in ("queued", "running") for j in jobs)
        return pages.index([j.public_dict() for j in jobs], refresh=3 if busy else None)

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

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, dependencies=auth)
    def job_page(job_id: str) -> HTMLResponse:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        r = job.result if job.status == "done" else None
        downloads = [f for f in DOWNLOADS if f not in ("overlay_layer.png", "mre_map.png", "mre.json",
                                                       "liver_mask_qc.png", *VOLUME_FILES)]
        refresh = 2 if job.status in ("queued", "running") else None
        public = job.public_dict()
        return pages.job(public, public["result"] if r else None, downloads, refresh)

    @app.get("/jobs/{job_id}/files/{name}", dependencies=auth)
    def job_file(job_id: str, name: str) -> FileResponse:
        job = store.get(job_id)
        if job is None or name not in DOWNLOADS:
            raise HTTPException(404, f"no file {name!r} for job {job_id!r}")
        folder = Path(job.out_dir) / job.id
        path = folder / name
        if not path.is_file() and name.startswith("report.") and job.status == "done" and job.result:
            from liverfib.report.clinical_report import write_report

            write_report(job.result, folder)  # reports are made on first request when not yet there
        if not path.is_file():
            raise HTTPException(404, f"{name} is not available for job {job_id} (status {job.status})")
        return FileResponse(path, media_type=DOWNLOADS[name], filename=name)


def add_upload_routes(
    app: FastAPI, intake: Intake, auth: list[Any], on_job: Callable[[str], None] | None = None
) -> None:
    """``POST /api/upload`` (201 with the queued jobs and the skipped files) and the form's ``POST /upload``."""
    from starlette.concurrency import run_in_threadpool

    async def accept(file: UploadFile) -> dict[str, Any]:
        try:
            jobs, skipped = await run_in_threadpool(intake, file.file, file.filename or "upload")
        except UploadRejected as exc:
            raise HTTPException(exc.status, exc.reason) from None
        for j in jobs:
            if on_job is not None:
                on_job(j["id"])
        return {"jobs": jobs, "skipped": skipped}

    @app.post("/api/upload", dependencies=auth, status_code=201)
    async def api_upload(file: UploadFile) -> dict[str, Any]:
        return await accept(file)

    @app.post("/upload", dependencies=auth)
    async def form_upload(file: UploadFile) -> Any:
        await accept(file)
        return RedirectResponse("/", status_code=303)
