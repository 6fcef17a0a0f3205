"""The CLI twins of the clinical tools: de-identify, report on one image, run the DICOM listener or
the web app."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline.clinical.config import ClinicalConfig, ModelCache
from liverfib.pipeline.clinical.processor import make_processor
from liverfib.pipeline.clinical.ultrasound import analyse_file

__all__ = ["run_deidentify", "run_report", "run_serve", "run_serve_dicom"]


def run_deidentify(
    src: Path, out_dir: Path, *, salt: str | None = None, mask_burned_in: bool = True, strict: bool = False
) -> tuple[dict[str, Any], str]:
    """De-identify a DICOM file or folder into ``out_dir`` (Basic Profile; see clinical.deidentify).

    Files that are not DICOM are skipped and listed; none de-identified (or any skipped with
    ``strict``) raises :class:`InputError`."""
    import os

    from liverfib.clinical.deidentify import deidentify_path
    from liverfib.io.outputs import check_output_dir

    if not Path(src).exists():
        raise InputError(f"{src}: file or folder not found")
    check_output_dir(out_dir, option="OUT")

    salt = salt or os.environ.get("LIVERFIB_DEID_SALT")
    if not salt:
        raise ConfigError(
            "no salt: pass --salt SECRET or set LIVERFIB_DEID_SALT (the same secret keeps UIDs of one "
            "study consistent across runs; keep it private)"
        )
    rows = deidentify_path(src, out_dir, salt=salt, mask_burned_in=mask_burned_in)
    ok = [r for r in rows if r["status"] == "ok"]
    refused = [f"{r['input']}: {r['reason']}" for r in rows if r["status"] != "ok"]
    if not ok:
        raise InputError(f"de-identified none of {len(rows)} file(s): " + "; ".join(refused[:3]))
    if strict and refused:
        raise InputError(f"--strict: {len(refused)} file(s) not de-identified, first: {refused[0]}")
    summary = {"out": str(out_dir), "n_ok": len(ok), "n_skipped_or_failed": len(rows) - len(ok), "files": rows}
    lines = [f"de-identified {len(ok)} of {len(rows)} files into {out_dir}"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"  {r['status']}: {r['input']}: {r['reason']}")
        elif r.get("pixels_masked_fraction") is not None:
            lines.append(f"  {Path(r['output']).name}: {r['pixels_masked_fraction']:.0%} of pixels outside the fan blanked")
    return summary, "\n".join(lines)


def run_report(
    image_path: Path, out_dir: Path, *, model: str = "default", cam: bool = True, deidentified: bool = False
) -> tuple[dict[str, Any], str]:
    """Analyse one image (DICOM or raster) and write DICOM SEG/SR/SC and an HTML/PDF report."""
    if not image_path.is_file():
        raise InputError(f"{image_path}: file not found; pass one ultrasound image (DICOM, PNG or JPEG)")
    cfg = ClinicalConfig(model=model, with_cam=cam, deidentified_report=deidentified)
    result = analyse_file(image_path, out_dir, models=ModelCache(cfg))
    probs = " ".join(f"{k}={v:.2f}" for k, v in result["probabilities"].items())
    text = "\n".join(
        [
            f"{image_path.name}: stage {result['stage']} ({probs})  (research use only)",
            *(f"note: {n}" for n in result["notes"]),
            f"wrote {', '.join(result['files'])} and result.json into {out_dir}",
        ]
    )
    return result, text


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
