"""Clinical integration workflow: analyse one study into DICOM results and a report; run the servers.

:func:`analyse_file` is the one place where a received ultrasound image becomes results:
read -> route -> stage (US) -> liver mask / CAM when available -> SEG + SR + SC -> report.
The DICOM listener and the web app only queue jobs; :func:`make_processor` runs them, one analysis
per job kind (``processor.ANALYSES``).

Modules: ``config`` (settings, shared models), ``context`` (study tags, model accuracy, legend),
``ultrasound``, ``mr`` (MRE), ``volume`` (3D segmentation jobs, MRE volumes for the viewer), ``processor`` (the worker's job function), ``commands`` (CLI twins).
"""

from __future__ import annotations

from liverfib.pipeline.clinical.commands import run_deidentify, run_report, run_serve, run_serve_dicom
from liverfib.pipeline.clinical.config import ClinicalConfig, ModelCache
from liverfib.pipeline.clinical.processor import make_processor
from liverfib.pipeline.clinical.ultrasound import analyse_file

__all__ = [
    "ClinicalConfig",
    "ModelCache",
    "analyse_file",
    "make_processor",
    "run_deidentify",
    "run_report",
    "run_serve",
    "run_serve_dicom",
]
