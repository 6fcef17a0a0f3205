"""The CLI twins of the servers: the DICOM listener and the web app, each with its job worker."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from liverfib.clinical.processor import make_processor
from liverfib.errors import ConfigError
from liverfib.pipeline.clinical.config import ClinicalConfig

__all__ = ["run_serve", "run_serve_dicom"]


def run_serve_dicom(
    *,
    data_dir: Path,
    ae_title: str = "LIVERFIB",
    host: str = "127.0.0.1",
    port: int = 11112,
    allow: list[str] | None = None,
    forward: str | None = None,
    cam: bool = True,
    model: str = "default",
    keep_identifiers: bool = False,
    until: Callable[[], bool] | None = None,
) -> tuple[dict[str, Any], str]:
    """Run the DICOM listener and the job worker until Ctrl-C (or ``until()`` returns True).

    Received instances are de-identified before they are stored; ``keep_identifiers`` keeps the
    original identifiers in the job database so that results forwarded to the PACS carry them.
    """
    from liverfib.clinical.jobs import JobStore, JobWorker
    from liverfib.clinical.pacs import DicomListener, check_port, parse_destination

    check_port(port)
    dest = parse_destination(forward) if forward else None
    if not allow:
        raise ConfigError("no calling AE title is allowed; pass --allow AE1,AE2 (or --allow '*' to accept any sender)")
    store = JobStore(data_dir / "jobs.sqlite")
    process = make_processor(
        ClinicalConfig(model=model, with_cam=cam), store=store, forward=dest, calling_aet=ae_title
    )
    worker = JobWorker(store, process).start()
    listener = DicomListener(
        store,
        data_dir / "spool",
        ae_title=ae_title,
        allowed_aets=allow,
        on_job=lambda _id: worker.notify(),
        results_dir=data_dir / "results",
        keep_identifiers=keep_identifiers,
    )
    try:
        listener.start(host, port)
    except OSError as exc:
        worker.stop()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port or --host") from None
    print(f"liverfib DICOM listener {ae_title} on {host}:{listener.port}; jobs in {store.path}", flush=True)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():  # Ctrl-C and `kill` (docker, systemd)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.is_set() and not (until and until()):
            stop.wait(0.2)
    finally:
        listener.stop()
        worker.stop()
    counts = store.counts()
    return {"jobs": counts}, f"stopped; jobs: {counts}"


def run_serve(
    *,
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_upload_mb: float = 64.0,
    cam: bool = True,
    model: str = "default",
) -> tuple[dict[str, Any], str]:
    """Run the web app (token from LIVERFIB_TOKEN) with its job worker until Ctrl-C."""
    import os

    import uvicorn

    from liverfib.clinical.jobs import JobStore, JobWorker
    from liverfib.clinical.pacs import check_port
    from liverfib.clinical.web import WebConfig, create_app

    check_port(port)
    if not max_upload_mb > 0:
        raise ConfigError(f"--max-upload-mb must be above 0, got {max_upload_mb}")
    token = os.environ.get("LIVERFIB_TOKEN", "")
    if len(token) < 16:
        raise ConfigError(
            "set LIVERFIB_TOKEN to a secret of at least 16 characters before 'liverfib serve' "
            "(e.g. export LIVERFIB_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(24))'))"
        )
    store = JobStore(data_dir / "jobs.sqlite")
    worker = JobWorker(store, make_processor(ClinicalConfig(model=model, with_cam=cam))).start()
    app = create_app(
        store,
        WebConfig(data_dir=data_dir, token=token, max_upload_bytes=int(max_upload_mb * 1024 * 1024)),
        on_job=lambda _id: worker.notify(),
    )
    try:
        # limit_concurrency: beyond 64 open requests uvicorn answers 503 instead of queueing more
        uvicorn.run(app, host=host, port=port, log_level="info", limit_concurrency=64, timeout_keep_alive=5)
    finally:
        worker.stop()
    counts = store.counts()
    return {"jobs": counts}, f"stopped; jobs: {counts}"
