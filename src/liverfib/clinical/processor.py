"""The worker's job function: run the analysis of the job's kind, then forward the DICOM results.

Each kind of job (``us-staging``, ``mre``, ``mri``, ``segment-3d``) maps to one analysis in :data:`ANALYSES`; a new
modality is one function ``(job, models) -> (status, result, error)`` and one entry there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from liverfib.errors import LiverfibError
from liverfib.pipeline.clinical.config import ClinicalConfig, ModelCache
from liverfib.pipeline.clinical.mr import analyse_mr
from liverfib.pipeline.clinical.ultrasound import analyse_file
from liverfib.pipeline.clinical.volume import analyse_volume

__all__ = ["ANALYSES", "make_processor"]

#: ``(status, result, error)`` of a job: status ``done``, ``failed`` or ``unsupported``.
Outcome = tuple[str, dict[str, Any] | None, str | None]


def _analyse_ultrasound(job: Any, models: ModelCache) -> Outcome:
    """One ultrasound image -> stage, masks, DICOM results and report (see :func:`analyse_file`)."""
    try:
        result = analyse_file(Path(job.input_path), Path(job.out_dir) / job.id, models=models, name=job.name)
    except LiverfibError as exc:
        return "failed", None, str(exc)
    return "done", result, None


#: Job kind -> its analysis.
ANALYSES: dict[str, Callable[[Any, ModelCache], Outcome]] = {
    "us-staging": _analyse_ultrasound,
    "mre": analyse_mr,
    "mri": analyse_mr,
    "segment-3d": analyse_volume,
}


def make_processor(
    cfg: ClinicalConfig,
    *,
    store: Any = None,
    forward: Any = None,
    calling_aet: str = "LIVERFIB",
    models: ModelCache | None = None,
) -> Callable[[Any], Outcome]:
    """The job function of the worker: analyse, then C-STORE SEG/SR/SC to ``forward`` if given.

    ``models`` shares loaded models between processors (its config wins over ``cfg``).
    """
    models = models or ModelCache(cfg)

    def process(job: Any) -> Outcome:
        analyse = ANALYSES.get(job.kind)
        if analyse is None:
            return "unsupported", None, f"no analysis for kind {job.kind!r}"
        status, result, error = analyse(job, models)
        if status != "done" or result is None:
            return status, result, error
        if forward is not None and job.origin == "dicom":
            result["forwarded"] = _forward(job, store, forward, calling_aet)
        return "done", result, None

    process.models = models  # type: ignore[attr-defined]
    return process


def _forward(job: Any, store: Any, forward: Any, calling_aet: str) -> dict[str, Any]:
    """C-STORE the job's SEG/SR/SC to ``forward`` (re-identified where the store keeps the
    pseudonym map); records and returns the outcome."""
    from liverfib.clinical.pacs import reidentify, send_files

    out_dir = Path(job.out_dir) / job.id
    files = [out_dir / f for f in ("seg.dcm", "sr.dcm", "sc.dcm") if (out_dir / f).is_file()]
    try:
        # identifiers come back only where the operator kept the pseudonym map
        transform = (lambda ds: reidentify(ds, store.pseudonyms)) if store is not None else None
        sent = send_files(files, forward, calling_aet=calling_aet, transform=transform)
    except (OSError, RuntimeError, ValueError) as exc:
        sent = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    if store is not None:
        store.set_forwarded(job.id, sent)
    return sent
