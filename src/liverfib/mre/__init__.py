"""MR elastography: synthetic exams, DICOM readers, liver segmentation, stiffness, agreement.

Heavy modules (torch models, segmentation) are imported by name, not here.
"""

from __future__ import annotations

from liverfib.mre.stages import DEFAULT_CUTOFFS, STAGES, StageCutoffs, load_cutoffs, stage_from_kpa

__all__ = ["STAGES", "StageCutoffs", "DEFAULT_CUTOFFS", "stage_from_kpa", "load_cutoffs"]
