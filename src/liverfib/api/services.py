"""Clinical and archive services: report, deidentify, serve, serve_dicom, batch, models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liverfib.api._device import _resolve_device
from liverfib.api._inputs import PathLike
from liverfib.api.results import DeidentifyResult, ReportResult, Result, _wrap


def report(image: PathLike, *, out: PathLike, model: str = "default", cam: bool = True,
           deidentified: bool = False, device: str = "cpu") -> ReportResult:
    """Stage one image; write report.html/pdf, DICOM SEG/SR/SC and result.json into folder ``out``."""
    _resolve_device(device, "report")
    from liverfib.pipeline.clinical import run_report

    return _wrap(ReportResult, run_report(Path(image), Path(out), model=model, cam=cam,
                                          deidentified=deidentified))


def deidentify(src: PathLike, out: PathLike, *, salt: str | None = None,
               mask_burned_in: bool = True, strict: bool = False) -> DeidentifyResult:
    """De-identify a DICOM file or folder (Basic Confidentiality Profile) into folder ``out``; files
    that are not DICOM are skipped and listed (``strict`` stops instead)."""
    from liverfib.pipeline.clinical import run_deidentify

    return _wrap(DeidentifyResult, run_deidentify(Path(src), Path(out), salt=salt, mask_burned_in=mask_burned_in,
                                                  strict=strict))


def serve(**options: Any) -> Result:
    """Run the web viewer until interrupted; options as ``liverfib serve --help``."""
    from liverfib.clinical.serve import run_serve

    return _wrap(Result, run_serve(**options))


def serve_dicom(**options: Any) -> Result:
    """Run the DICOM storage listener until interrupted; options as ``liverfib serve-dicom --help``."""
    from liverfib.clinical.serve import run_serve_dicom

    return _wrap(Result, run_serve_dicom(**options))


def batch(source: PathLike, *, task: str, out: PathLike, device: str = "cpu", **options: Any) -> Result:
    """Archive-scale inference on Ray Data (``liverfib batch``): one Parquet row per input, resumable;
    options (``model``, ``address``, ``workers``, ``batch_size``, ``engine``, ``shard_size``) as in
    ``liverfib batch --help``. Returns the summary (total, ok, error, skipped, items/s, ...)."""
    _resolve_device(device, "batch")
    from liverfib.pipeline.batch import run_batch

    return _wrap(Result, run_batch(Path(source), task=task, out=Path(out), **options))


def models(pattern: str = "*") -> Result:
    """Every task with its shipped models: measured figure, where it came from, size."""
    from liverfib.models.catalog import list_shipped

    return _wrap(Result, list_shipped(pattern))
