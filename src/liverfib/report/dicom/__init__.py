"""DICOM results with highdicom: masks as SEG, measurements as a TID 1500 SR, overlays as SC.

Every object references the source image (same study, new series) so that a PACS files it beside
the scan it describes. Each writer saves atomically (``io.atomic.atomic_write``) and returns the
dataset; the ``read_*`` functions read a result back for validation, and :func:`run_dciodvfy`
runs Debian's dicom3tools validator when it is installed.

Codes: anatomy and units use SNOMED CT / DCM / UCUM; concepts that have no standard code (METAVIR
stage, stage probabilities, model attention region) use the private coding scheme ``99LIVERFIB``.

Modules: ``codes``, ``source`` (source datasets, saving), ``seg``, ``sr``, ``sc``, ``validation``.
"""

from __future__ import annotations

from liverfib.report.dicom.codes import SEGMENT_KINDS
from liverfib.report.dicom.sc import write_sc
from liverfib.report.dicom.seg import Segment, read_seg_masks, write_seg, write_seg_series
from liverfib.report.dicom.source import dataset_from_array, read_dicom_dataset, save_dataset
from liverfib.report.dicom.sr import read_sr_findings, write_sr
from liverfib.report.dicom.validation import run_dciodvfy

__all__ = [
    "Segment",
    "SEGMENT_KINDS",
    "dataset_from_array",
    "read_dicom_dataset",
    "read_seg_masks",
    "read_sr_findings",
    "run_dciodvfy",
    "save_dataset",
    "write_sc",
    "write_seg",
    "write_seg_series",
    "write_sr",
]
