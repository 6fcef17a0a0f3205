"""Ultrasound staging: predict, audit, split, evaluate, train, explain, pseudo_masks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liverfib.api._device import _resolve_device
from liverfib.api._inputs import Inputs, PathLike, _as_images, _as_paths, _opt
from liverfib.api.results import (
    AuditResult,
    EvaluateResult,
    ExplainResult,
    PredictResult,
    Result,
    SplitResult,
    StagePrediction,
    TrainResult,
    _wrap,
)
from liverfib.image import Image


def predict(
    inputs: Inputs,
    *,
    model: str = "default",
    tta: bool = False,
    batch_size: int = 16,
    out: PathLike | None = None,
    engine: str = "auto",
    strict: bool = False,
    device: str = "cpu",
) -> PredictResult:
    """METAVIR stage F0..F4 of B-mode ultrasound images (files, folders, arrays ``(H, W)`` uint8).

    ``out``: a ``.csv`` file for the predictions (written only when the run succeeds).
    """
    _resolve_device(device, "predict")
    images = _as_images(inputs)
    if images is not None:
        return _predict_images(images, model=model, tta=tta, batch_size=batch_size, engine=engine)
    from liverfib.pipeline.predict import run_predict

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
             n_boot: int = 1000, keep_copies: bool = False, cam: str | None = None, device: str = "cpu",
             **options: Any) -> EvaluateResult:
    """Metrics with cluster-bootstrap 95% CIs, from a model + split, a model + labelled folder (no
    split: the whole folder is scored, groups from the audit clustering; ``labels_csv=`` for a labels
    CSV) or a predictions CSV."""
    _resolve_device(device, "evaluate")
    from liverfib.pipeline.evaluate import run_evaluate

    return _wrap(EvaluateResult, run_evaluate(model=model, data_dir=_opt(data), split_csv=_opt(split),
                                              subset=subset, predictions_csv=_opt(predictions),
                                              out_dir=_opt(out), n_boot=n_boot, keep_copies=keep_copies,
                                              cam=cam, **options))


def train(*, data: PathLike, split: PathLike, out: PathLike, config: PathLike | None = None,
          device: str = "cpu", val_subset: str = "val", threads: int | None = None,
          **overrides: Any) -> TrainResult:
    """Train a staging model on a split's train rows, select on ``val_subset``; ``overrides``:
    backbone, epochs, batch_size, lr, img_size, seed."""
    device = _resolve_device(device, "train", gpu=True)
    from liverfib.pipeline.staging import run_train

    return _wrap(TrainResult, run_train(Path(data), Path(split), Path(out), config_path=_opt(config),
                                        overrides={k: v for k, v in overrides.items() if v is not None},
                                        device=device, val_subset=val_subset, threads=threads))


def explain(inputs: Inputs, *, out: PathLike, model: str = "default", method: str = "gradcam",
            target: str = "predicted", layers: str = "all", liver_model: str | None = "default",
            faithfulness: bool = False, device: str = "cpu") -> ExplainResult:
    """Class-activation maps: heatmap + overlay per image, CAM statistics, in folder ``out``."""
    _resolve_device(device, "explain")
    from liverfib.pipeline.explain import run_explain

    return _wrap(ExplainResult, run_explain(_as_paths(inputs), out_dir=Path(out), model=model, method=method,
                                            target=target, layers=layers, liver_model=liver_model,
                                            faithfulness=faithfulness))


def pseudo_masks(data: PathLike, *, out: PathLike, model: str = "default", method: str = "gradcam",
                 threshold: str = "0.5", device: str = "cpu") -> Result:
    """CAM -> binary pseudo-masks for every distinct image of a labelled folder."""
    _resolve_device(device, "pseudo-masks")
    from liverfib.pipeline.explain import run_pseudo_masks

    return _wrap(Result, run_pseudo_masks(Path(data), out_dir=Path(out), model=model, method=method,
                                          threshold=str(threshold)))
