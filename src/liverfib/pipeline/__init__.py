"""Python twin of the CLI.

Each ``run_*`` function wires the floors below it together (io, preprocess, models/inference,
evaluation, training, explain, report and the modality packages; see ARCHITECTURE.md) and returns
``(json_summary, human_text)``; ``liverfib.api`` wraps them in typed results and ``liverfib.cli``
only parses options and prints. One module per workflow.
The names below are loaded on first access, so ``liverfib --help`` stays fast.
"""

from __future__ import annotations

__all__ = ["run_audit", "run_split", "run_evaluate", "run_predict", "run_train"]
__all__ += ["run_radiomics_extract", "run_radiomics_train", "run_radiomics_evaluate"]
__all__ += ["run_explain", "run_pseudo_masks", "run_segment", "run_train_seg"]
__all__ += ["run_phantom_mre", "run_mre", "run_agreement"]
__all__ += ["run_segment_volume", "run_mri_stage", "run_mri_phantom", "run_mri_inspect", "run_mri_train"]
__all__ += ["run_train_seg_mri"]
__all__ += ["run_deidentify", "run_report"]
__all__ += ["run_batch"]


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from liverfib.pipeline import _exports

    return getattr(_exports, name)
