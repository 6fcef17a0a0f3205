"""Radiomics: radiomics_extract, radiomics_deep_features, radiomics_train, radiomics_evaluate."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liverfib.api._device import _resolve_device
from liverfib.api._inputs import Inputs, PathLike, _as_paths
from liverfib.api.results import EvaluateResult, Result, TrainResult, _wrap


def radiomics_extract(images: Inputs, *, out: PathLike, masks: Sequence[PathLike] | None = None,
                      **options: Any) -> Result:
    """pyradiomics features, one row per distinct image, into a Parquet table ``out``."""
    from liverfib.pipeline.radiomics import run_radiomics_extract

    return _wrap(Result, run_radiomics_extract(_as_paths(images), Path(out),
                                               masks=[Path(m) for m in masks] if masks else None, **options))


def radiomics_deep_features(images: Inputs, *, out: PathLike, device: str = "cpu", **options: Any) -> Result:
    """ImageNet-backbone features per distinct image into Parquet ``out`` (``radiomics_train(fuse=...)``)."""
    _resolve_device(device, "radiomics deep-features")
    from liverfib.pipeline.deep_features import run_deep_features

    return _wrap(Result, run_deep_features(_as_paths(images), Path(out), **options))


def radiomics_train(*, features: PathLike, split: PathLike, out: PathLike, **options: Any) -> TrainResult:
    """Nested grouped CV (K-fold split) or train/test fit of a classical model on radiomics features."""
    from liverfib.pipeline.radiomics_train import run_radiomics_train

    return _wrap(TrainResult, run_radiomics_train(Path(features), Path(split), Path(out), **options))


def radiomics_evaluate(*, model: PathLike, features: PathLike, split: PathLike, **options: Any) -> EvaluateResult:
    """Metrics with 95% CIs for a trained radiomics model."""
    from liverfib.pipeline.radiomics_evaluate import run_radiomics_evaluate

    return _wrap(EvaluateResult, run_radiomics_evaluate(Path(model), Path(features), Path(split), **options))
