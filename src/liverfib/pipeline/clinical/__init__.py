"""Clinical integration workflow: analyse one study into DICOM results and a report.

:func:`analyse_file` is the one place where a received ultrasound image becomes results:
read -> route -> stage (US) -> liver mask / CAM when available -> SEG + SR + SC -> report.
The servers (``liverfib.clinical``, the floor above) only queue jobs; their worker's job function
(``liverfib.clinical.processor``) runs one analysis of this package per job kind.

Modules: ``config`` (settings, shared models), ``context`` (study tags, model accuracy, legend),
``ultrasound``, ``mr`` (MRE), ``volume`` (3D segmentation jobs, MRE volumes for the viewer), ``routing`` (which
analysis a DICOM object gets), ``deidentify`` (Basic Profile), ``commands`` (CLI twins).
"""

from __future__ import annotations

from liverfib.pipeline.clinical.commands import run_deidentify, run_report
from liverfib.pipeline.clinical.config import ClinicalConfig, ModelCache
from liverfib.pipeline.clinical.ultrasound import analyse_file

__all__ = [
    "ClinicalConfig",
    "ModelCache",
    "analyse_file",
    "run_deidentify",
    "run_report",
]
