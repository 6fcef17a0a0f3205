"""The ``run_*`` functions that ``liverfib.pipeline`` exports, imported on first use (see its
``__getattr__``): importing one light pipeline module (``batch_tasks`` for the CLI's choices)
then no longer imports every workflow."""

# ruff: noqa: F401  (re-exports)
from __future__ import annotations

from liverfib.pipeline.batch import run_batch
from liverfib.pipeline.clinical import run_deidentify, run_report
from liverfib.pipeline.evaluate import run_evaluate
from liverfib.pipeline.explain import run_explain, run_pseudo_masks
from liverfib.pipeline.mre import run_mre, run_phantom_mre
from liverfib.pipeline.mre_agreement import run_agreement
from liverfib.pipeline.mri import run_mri_inspect, run_mri_phantom, run_mri_stage
from liverfib.pipeline.mri_seg_train import run_train_seg_mri
from liverfib.pipeline.mri_train import run_mri_train
from liverfib.pipeline.predict import run_predict
from liverfib.pipeline.radiomics import run_radiomics_extract
from liverfib.pipeline.radiomics_evaluate import run_radiomics_evaluate
from liverfib.pipeline.radiomics_train import run_radiomics_train
from liverfib.pipeline.segment import run_segment, run_train_seg
from liverfib.pipeline.segment_volume import run_segment_volume
from liverfib.pipeline.staging import run_audit, run_split, run_train
