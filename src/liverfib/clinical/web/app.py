"""The app factory: the FastAPI app with its routes, wrapped in the body limit and the upload gate."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from liverfib.clinical.jobs import JobStore
from liverfib.clinical.web.config import WebConfig

__all__ = ["create_app"]


def create_app(store: JobStore, cfg: WebConfig, *, on_job: Callable[[str], None] | None = None) -> Any:
    """Build the FastAPI app (wrapped in the body-size limit and the upload gate)."""
    from fastapi import Depends, FastAPI

    from liverfib.clinical.web.auth import Gate
    from liverfib.clinical.web.middleware import BodyLimit
    from liverfib.clinical.web.pages import Pages
    from liverfib.clinical.web.routes import add_job_routes, add_session_routes, add_upload_routes
    from liverfib.clinical.web.uploads import queue_upload
    from liverfib.pipeline.clinical.deidentify import load_or_create_salt

    salt = cfg.deid_salt or load_or_create_salt(cfg.data_dir / "deid.salt")
    intake = partial(
        queue_upload, store=store, cfg=cfg, upload_root=cfg.data_dir / "uploads",
        results_root=cfg.data_dir / "results", salt=salt,
    )
    gate, pages = Gate(cfg, store), Pages()
    app = FastAPI(title="liverfib", docs_url=None, redoc_url=None, openapi_url=None)
    auth = [Depends(gate.authorised)]
    add_session_routes(app, gate, pages)
    add_job_routes(app, store, pages, auth)
    add_upload_routes(app, intake, auth, on_job)
    return BodyLimit(app, cfg.max_upload_bytes, gate.precheck)
