"""MR elastography and MRI: mre, agreement, phantom_mre, predict_mri, train_mri, mri_inspect, phantom_mri."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liverfib.api._device import _resolve_device
from liverfib.api._inputs import PathLike, _opt
from liverfib.api.results import MreResult, Result, TrainResult, _wrap


def mre(exam: PathLike, *, out: PathLike | None = None, device: str = "cpu", **options: Any) -> MreResult:
    """Liver stiffness (kPa) and stage of one MRE exam folder; options as ``liverfib mre --help``."""
    _resolve_device(device, "mre")
    from liverfib.pipeline.mre import run_mre

    summary, text = run_mre(Path(exam), out_dir=_opt(out), **options)
    return MreResult(summary=summary, text=text, mean_stiffness_kpa=_find(summary, "mean_stiffness_kpa"),
                     stage=_find(summary, "stage"))


def _find(summary: dict[str, Any], key: str) -> Any:
    if key in summary:
        return summary[key]
    for v in summary.values():
        if isinstance(v, dict) and key in v:
            return v[key]
    return None


def phantom_mre(out: PathLike, *, n: int = 10, seed: int = 0, vendor: str | None = None,
                variant: str = "standard", fmt: str = "dicom") -> Result:
    """SYNTHETIC MR elastography exams with ground truth (``variant`` standard | independent,
    ``fmt`` dicom | nifti)."""
    from liverfib.pipeline.mre import run_phantom_mre

    return _wrap(Result, run_phantom_mre(n, seed, Path(out), vendor=vendor, variant=variant, fmt=fmt))


def agreement(a: PathLike, b: PathLike, *, out: PathLike | None = None, **options: Any) -> Result:
    """Agreement of two MRE measurement CSVs (ICC, Bland-Altman, stage kappa) with 95% CIs."""
    from liverfib.pipeline.mre_agreement import run_agreement

    return _wrap(Result, run_agreement(Path(a), Path(b), out_dir=_opt(out), **options))


def predict_mri(path: PathLike, *, model: str = "default", out: PathLike | None = None, device: str = "cpu",
                **options: Any) -> Result:
    """MRI staging (LiQA multi-phase or CirrMRI600+); options as ``liverfib predict-mri --help``."""
    _resolve_device(device, "predict-mri")
    from liverfib.pipeline.mri import run_mri_stage

    return _wrap(Result, run_mri_stage(Path(path), model=model, out_csv=_opt(out), **options))


def train_mri(data: PathLike, *, out: PathLike, device: str = "cpu", **options: Any) -> TrainResult:
    """Train MRI staging; options as ``liverfib train-mri --help``."""
    _resolve_device(device, "train-mri")
    from liverfib.pipeline.mri_train import run_mri_train

    return _wrap(TrainResult, run_mri_train(Path(data), Path(out), **options))


def mri_inspect(root: PathLike, *, labels: PathLike | None = None) -> Result:
    """List the MRI exams of a LiQA/CirrMRI600+ root."""
    from liverfib.pipeline.mri import run_mri_inspect

    return _wrap(Result, run_mri_inspect(Path(root), labels_csv=_opt(labels)))


def phantom_mri(out: PathLike, **options: Any) -> Result:
    """SYNTHETIC liver MRI in the LiQA or CirrMRI600+ layout."""
    from liverfib.pipeline.mri import run_mri_phantom

    return _wrap(Result, run_mri_phantom(Path(out), **options))
