"""The Python API: one function per CLI command, same names, same options, typed results.

    >>> import liverfib
    >>> result = liverfib.predict("demo/us/F0_a1027.jpg")          # a path, a list of paths,
    >>> result.predictions[0].stage, result.predictions[0].p_ge_f2  # a folder or a numpy array
    ('F0', 0.0305)

Every function takes what its command takes (a path, a list of paths, or for ``predict`` and
``segment`` an in-memory ``numpy`` array / :class:`liverfib.Image`) and returns a frozen dataclass:
the fields a caller needs most, plus ``summary`` (exactly the JSON ``--json`` prints) and ``text``
(what the command prints). Problems the caller can fix raise :class:`liverfib.LiverfibError`.
The CLI (``liverfib.cli``) calls these functions and only parses and prints.

Heavy libraries (torch, sklearn) load inside the functions, so ``import liverfib`` stays light.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from liverfib.errors import InputError
from liverfib.image import Image

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Result", "StagePrediction", "PredictResult", "SegmentResult", "MreResult",
    "predict", "segment", "mre", "evaluate", "explain", "audit", "split", "train", "report",
    "deidentify", "pseudo_masks", "train_seg", "predict_mri", "train_mri", "mri_inspect", "phantom_mre",
    "phantom_mri", "agreement", "radiomics_extract", "radiomics_train",
    "radiomics_evaluate", "radiomics_deep_features", "serve", "serve_dicom", "batch", "models",
]

PathLike = Union[str, "os.PathLike[str]"]
#: What the image commands accept: a path, a list of paths, an array or an :class:`Image`.
Inputs = Union[PathLike, Sequence[PathLike], "np.ndarray", Image, Sequence[Image]]


# ================================================================================= result types
@dataclass(frozen=True)
class Result:
    """What every command returns: ``summary`` (the ``--json`` output) and ``text`` (the printout)."""

    summary: dict[str, Any] = field(repr=False)
    text: str = field(repr=False)

    @property
    def out(self) -> Path | None:
        """Where the command wrote, when it did."""
        for key in ("out", "out_dir", "out_csv", "run_dir"):
            if self.summary.get(key):
                return Path(self.summary[key])
        return None

    @property
    def errors(self) -> list[dict[str, str]]:
        """Inputs that were skipped, each ``{"path", "error"}`` (the reason)."""
        return list(self.summary.get("errors", []))

    def to_dict(self) -> dict[str, Any]:
        return self.summary


@dataclass(frozen=True)
class StagePrediction:
    """Stage of one ultrasound image; probabilities per METAVIR class (sum to 1)."""

    path: str | None
    stage: str
    probabilities: dict[str, float]
    p_ge_f2: float | None
    p_ge_f3: float | None
    p_f4: float | None
    warning: str | None = None


@dataclass(frozen=True)
class PredictResult(Result):
    predictions: list[StagePrediction] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class SegmentResult(Result):
    """``masks``: one record per input (mask file, area or ``volume_ml``)."""

    masks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class MreResult(Result):
    """Liver stiffness of one exam (kPa) and its stage."""

    mean_stiffness_kpa: float | None = None
    stage: str | None = None


@dataclass(frozen=True)
class AuditResult(Result):
    pass


@dataclass(frozen=True)
class SplitResult(Result):
    pass


@dataclass(frozen=True)
class EvaluateResult(Result):
    pass


@dataclass(frozen=True)
class ExplainResult(Result):
    pass


@dataclass(frozen=True)
class TrainResult(Result):
    pass


@dataclass(frozen=True)
class ReportResult(Result):
    pass


@dataclass(frozen=True)
class DeidentifyResult(Result):
    pass


def _wrap(cls: type[Result], pair: tuple[dict[str, Any], str], **fields: Any) -> Any:
    summary, text = pair
    return cls(summary=summary, text=text, **fields)


# ================================================================================= inputs
def _is_array(x: Any) -> bool:
    return hasattr(x, "__array__") and hasattr(x, "shape") and not isinstance(x, (str, bytes))


def _as_paths(inputs: Any) -> list[Path]:
    """A path or a list of paths -> ``list[Path]`` (a string is one path, never its characters)."""
    if isinstance(inputs, (str, os.PathLike)):
        return [Path(inputs)]
    if isinstance(inputs, Sequence):
        if not inputs:
            raise InputError("no input given: pass a path, a list of paths or an image array")
        if all(isinstance(p, (str, os.PathLike)) for p in inputs):
            return [Path(p) for p in inputs]
    raise InputError(f"expected a path or a list of paths, got {type(inputs).__name__}")


def _as_images(inputs: Any) -> list[Image] | None:
    """In-memory inputs -> :class:`Image` list; ``None`` when ``inputs`` are paths."""
    import numpy as np

    if isinstance(inputs, Image):
        return [inputs]
    if _is_array(inputs):
        return [Image(np.asarray(inputs))]
    if isinstance(inputs, Sequence) and inputs and not isinstance(inputs, str):
        if all(isinstance(x, Image) for x in inputs):
            return list(inputs)
        if all(_is_array(x) for x in inputs):
            return [Image(np.asarray(x)) for x in inputs]
    return None


# ================================================================================= ultrasound
def predict(
    inputs: Inputs,
    *,
    model: str = "default",
    tta: bool = False,
    batch_size: int = 16,
    out: PathLike | None = None,
    engine: str = "auto",
    strict: bool = False,
) -> PredictResult:
    """METAVIR stage F0..F4 of B-mode ultrasound images (files, folders, arrays ``(H, W)`` uint8).

    ``out``: a ``.csv`` file for the predictions (written only when the run succeeds).
    """
    images = _as_images(inputs)
    if images is not None:
        return _predict_images(images, model=model, tta=tta, batch_size=batch_size, engine=engine)
    from liverfib.pipeline.staging import run_predict

    summary, text = run_predict(_as_paths(inputs), model=model, tta=tta, batch_size=batch_size,
                                out_csv=Path(out) if out is not None else None, engine=engine, strict=strict)
    return PredictResult(summary=summary, text=text, predictions=_stage_records(summary["predictions"]),
                         model=summary["model"])


def _stage_records(records: list[dict[str, Any]]) -> list[StagePrediction]:
    return [StagePrediction(path=r.get("path"), stage=r["stage"], probabilities=r["probabilities"],
                            p_ge_f2=r["p_ge_f2"], p_ge_f3=r["p_ge_f3"], p_f4=r["p_f4"], warning=r.get("warning"))
            for r in records]


def _predict_images(images: list[Image], *, model: str, tta: bool, batch_size: int, engine: str) -> PredictResult:
    from liverfib.inference.predictor import PredictOutput, check_bmode, load_predictor

    warnings = [check_bmode(im) for im in images]  # raises InputError for non-US / blank images
    predictor = load_predictor(model, engine=engine)
    probs = predictor.predict_arrays([im.array for im in images], tta=tta, batch_size=batch_size)
    names = [str(im.path) if im.path else f"<array {i}>" for i, im in enumerate(images)]
    records = PredictOutput([Path(n) for n in names], probs, predictor.classes, warnings).as_records()
    for r, n in zip(records, names, strict=True):
        r["path"] = n
    summary = {"model": predictor.describe(), "n": len(records), "predictions": records, "n_skipped": 0,
               "errors": []}
    text = "\n".join(f"{r['path']}: {r['stage']}  P(>=F2)={r['p_ge_f2']:.2f}" for r in records)
    return PredictResult(summary=summary, text=text, predictions=_stage_records(records), model=summary["model"])


def segment(
    inputs: Inputs,
    *,
    out: PathLike,
    modality: str = "us",
    model: str = "default",
    **options: Any,
) -> SegmentResult:
    """Liver masks: ``us`` 2D images -> PNG masks + overlays in folder ``out``; ``mr``/``ct`` volumes
    -> ``mask.nii.gz`` (one input) or a folder. In-memory arrays are written to a temporary file first
    (2D -> PNG, 3D ``(D, H, W)`` -> NIfTI with the image's spacing)."""
    from liverfib.pipeline.segment import run_segment

    images = _as_images(inputs)
    with tempfile.TemporaryDirectory(prefix="liverfib-api-") as tmp:
        paths = _write_temp(images, Path(tmp)) if images is not None else _as_paths(inputs)
        summary, text = run_segment(paths, modality=modality, out=Path(out), model=model, **options)
    masks = summary.get("images") or summary.get("volumes") or summary.get("results") or []
    return SegmentResult(summary=summary, text=text, masks=list(masks))


def _write_temp(images: list[Image], folder: Path) -> list[Path]:
    import numpy as np

    from liverfib.io.nifti import write_nifti

    paths = []
    for i, im in enumerate(images):
        if im.ndim == 2:
            from PIL import Image as PILImage

            p = folder / f"array_{i}.png"
            PILImage.fromarray(np.clip(im.array, 0, 255).astype(np.uint8)).save(p)
        else:
            p = write_nifti(im, folder / f"array_{i}.nii.gz")
        paths.append(p)
    return paths


def audit(data: PathLike, *, labels: PathLike | None = None, out: PathLike | None = None,
          near_threshold: float = 0.85, cnn_threshold: float = 0.82, cnn: bool = True) -> AuditResult:
    """Copies, same-scan frames (pixel + CNN-feature links), label conflicts and source/label
    confounding of a dataset folder."""
    from liverfib.pipeline.staging import run_audit

    return _wrap(AuditResult, run_audit(Path(data), labels_csv=_opt(labels), out_dir=_opt(out),
                                        near_threshold=near_threshold, cnn_threshold=cnn_threshold, cnn=cnn))


def split(data: PathLike, *, out: PathLike, labels: PathLike | None = None, val_fraction: float = 0.15,
          test_fraction: float = 0.15, folds: int | None = None, seed: int = 0, naive: bool = False,
          near_threshold: float = 0.85, cnn_threshold: float = 0.82, cnn: bool = True,
          strict: bool = False) -> SplitResult:
    """A grouped split CSV (near-duplicate clusters never straddle train/val/test); unreadable files
    are left out and listed (``strict`` stops instead)."""
    from liverfib.pipeline.staging import run_split

    return _wrap(SplitResult, run_split(Path(data), Path(out), labels_csv=_opt(labels), val=val_fraction,
                                        test=test_fraction, folds=folds, seed=seed, naive=naive,
                                        near_threshold=near_threshold, cnn_threshold=cnn_threshold, cnn=cnn,
                                        strict=strict))


def evaluate(*, model: str | None = None, data: PathLike | None = None, split: PathLike | None = None,
             subset: str = "test", predictions: PathLike | None = None, out: PathLike | None = None,
             n_boot: int = 1000, keep_copies: bool = False, cam: str | None = None,
             **options: Any) -> EvaluateResult:
    """Metrics with cluster-bootstrap 95% CIs, from a model + split, a model + labelled folder (no
    split: the whole folder is scored, groups from the audit clustering; ``labels_csv=`` for a labels
    CSV) or a predictions CSV."""
    from liverfib.pipeline.staging import run_evaluate

    return _wrap(EvaluateResult, run_evaluate(model=model, data_dir=_opt(data), split_csv=_opt(split),
                                              subset=subset, predictions_csv=_opt(predictions),
                                              out_dir=_opt(out), n_boot=n_boot, keep_copies=keep_copies,
                                              cam=cam, **options))


def train(*, data: PathLike, split: PathLike, out: PathLike, config: PathLike | None = None,
          device: str = "cpu", val_subset: str = "val", threads: int | None = None,
          **overrides: Any) -> TrainResult:
    """Train a staging model on a split's train rows, select on ``val_subset``; ``overrides``:
    backbone, epochs, batch_size, lr, img_size, seed."""
    from liverfib.pipeline.staging import run_train

    return _wrap(TrainResult, run_train(Path(data), Path(split), Path(out), config_path=_opt(config),
                                        overrides={k: v for k, v in overrides.items() if v is not None},
                                        device=device, val_subset=val_subset, threads=threads))


def explain(inputs: Inputs, *, out: PathLike, model: str = "default", method: str = "gradcam",
            target: str = "predicted", layers: str = "all", liver_model: str | None = "default",
            faithfulness: bool = False) -> ExplainResult:
    """Class-activation maps: heatmap + overlay per image, CAM statistics, in folder ``out``."""
    from liverfib.pipeline.explain import run_explain

    return _wrap(ExplainResult, run_explain(_as_paths(inputs), out_dir=Path(out), model=model, method=method,
                                            target=target, layers=layers, liver_model=liver_model,
                                            faithfulness=faithfulness))


def pseudo_masks(data: PathLike, *, out: PathLike, model: str = "default", method: str = "gradcam",
                 threshold: str = "0.5") -> Result:
    """CAM -> binary pseudo-masks for every distinct image of a labelled folder."""
    from liverfib.pipeline.explain import run_pseudo_masks

    return _wrap(Result, run_pseudo_masks(Path(data), out_dir=Path(out), model=model, method=method,
                                          threshold=str(threshold)))


def train_seg(task: str, *, data: PathLike, out: PathLike, config: PathLike | None = None,
              val_fraction: float = 0.0, threads: int | None = None, **overrides: Any) -> TrainResult:
    """Train a segmentation network for ``task`` (see ``liverfib train-seg --list``)."""
    from liverfib.pipeline.segment import run_train_seg

    return _wrap(TrainResult, run_train_seg(task, Path(data), out_dir=Path(out), config=_opt(config),
                                            overrides={k: v for k, v in overrides.items() if v is not None},
                                            val_fraction=val_fraction, threads=threads))


# ================================================================================= MRE / MRI
def mre(exam: PathLike, *, out: PathLike | None = None, **options: Any) -> MreResult:
    """Liver stiffness (kPa) and stage of one MRE exam folder; options as ``liverfib mre --help``."""
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
    from liverfib.pipeline.mre import run_agreement

    return _wrap(Result, run_agreement(Path(a), Path(b), out_dir=_opt(out), **options))


def predict_mri(path: PathLike, *, model: str = "default", out: PathLike | None = None,
                **options: Any) -> Result:
    """MRI staging (LiQA multi-phase or CirrMRI600+); options as ``liverfib predict-mri --help``."""
    from liverfib.pipeline.mri import run_mri_stage

    return _wrap(Result, run_mri_stage(Path(path), model=model, out_csv=_opt(out), **options))


def train_mri(data: PathLike, *, out: PathLike, **options: Any) -> TrainResult:
    """Train MRI staging; options as ``liverfib train-mri --help``."""
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


# ================================================================================= radiomics
def radiomics_extract(images: Inputs, *, out: PathLike, masks: Sequence[PathLike] | None = None,
                      **options: Any) -> Result:
    """pyradiomics features, one row per distinct image, into a Parquet table ``out``."""
    from liverfib.pipeline.radiomics import run_radiomics_extract

    return _wrap(Result, run_radiomics_extract(_as_paths(images), Path(out),
                                               masks=[Path(m) for m in masks] if masks else None, **options))


def radiomics_deep_features(images: Inputs, *, out: PathLike, **options: Any) -> Result:
    """ImageNet-backbone features per distinct image into Parquet ``out`` (``radiomics_train(fuse=...)``)."""
    from liverfib.pipeline.radiomics import run_deep_features

    return _wrap(Result, run_deep_features(_as_paths(images), Path(out), **options))


def radiomics_train(*, features: PathLike, split: PathLike, out: PathLike, **options: Any) -> TrainResult:
    """Nested grouped CV (K-fold split) or train/test fit of a classical model on radiomics features."""
    from liverfib.pipeline.radiomics import run_radiomics_train

    return _wrap(TrainResult, run_radiomics_train(Path(features), Path(split), Path(out), **options))


def radiomics_evaluate(*, model: PathLike, features: PathLike, split: PathLike, **options: Any) -> EvaluateResult:
    """Metrics with 95% CIs for a trained radiomics model."""
    from liverfib.pipeline.radiomics import run_radiomics_evaluate

    return _wrap(EvaluateResult, run_radiomics_evaluate(Path(model), Path(features), Path(split), **options))


# ================================================================================= clinical
def report(image: PathLike, *, out: PathLike, model: str = "default", cam: bool = True,
           deidentified: bool = False) -> ReportResult:
    """Stage one image; write report.html/pdf, DICOM SEG/SR/SC and result.json into folder ``out``."""
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
    from liverfib.pipeline.clinical import run_serve

    return _wrap(Result, run_serve(**options))


def serve_dicom(**options: Any) -> Result:
    """Run the DICOM storage listener until interrupted; options as ``liverfib serve-dicom --help``."""
    from liverfib.pipeline.clinical import run_serve_dicom

    return _wrap(Result, run_serve_dicom(**options))


def batch(source: PathLike, *, task: str, out: PathLike, **options: Any) -> Result:
    """Archive-scale inference on Ray Data (``liverfib batch``): one Parquet row per input, resumable;
    options (``model``, ``address``, ``workers``, ``batch_size``, ``engine``, ``shard_size``) as in
    ``liverfib batch --help``. Returns the summary (total, ok, error, skipped, items/s, ...)."""
    from liverfib.pipeline.batch import run_batch

    return _wrap(Result, run_batch(Path(source), task=task, out=Path(out), **options))


def models(pattern: str = "*") -> Result:
    """Every task with its shipped models: measured figure, where it came from, size."""
    from liverfib.models.catalog import list_shipped

    return _wrap(Result, list_shipped(pattern))


def _opt(p: PathLike | None) -> Path | None:
    return Path(p) if p is not None else None
