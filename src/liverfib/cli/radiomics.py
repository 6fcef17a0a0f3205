"""`liverfib radiomics ...`: pyradiomics features, deep features, classical models, SHAP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liverfib import api
from liverfib.cli._app import DeviceOpt, JsonFlag, StrictFlag, _call, _renamed, app

radiomics_app = typer.Typer(
    name="radiomics",
    help="Radiomics beside deep learning: pyradiomics features, classical models, SHAP, fusion.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(radiomics_app, name="radiomics")


@radiomics_app.command("extract")
def radiomics_extract(
    images: Annotated[list[Path], typer.Option("--images", help="Image files or folders (repeatable).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output features .parquet (settings go to .yaml beside).")
    ],
    masks: Annotated[
        list[Path] | None,
        typer.Option("--masks", help="Mask files or folders, one per image in sorted order (NIfTI/PNG)."),
    ] = None,
    roi: Annotated[
        str | None,
        typer.Option("--roi", help="Automatic ROI for 2D ultrasound instead of masks: fan or liver."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Extraction YAML (e.g. configs/radiomics_us.yaml).")
    ] = None,
    bin_width: Annotated[float | None, typer.Option("--bin-width", help="Gray-level bin width.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Processes (1 or 2).")] = None,
    robustness: Annotated[
        int, typer.Option("--robustness", help="Images re-extracted under perturbations for ICC (0 = skip).")
    ] = 0,
    keep_copies: Annotated[
        bool, typer.Option("--keep-copies", help="Extract byte-identical copies separately.")
    ] = False,
    strict: StrictFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Extract pyradiomics features (one row per distinct image) into a Parquet table."""
    overrides = {k: v for k, v in dict(bin_width=bin_width, workers=workers).items() if v is not None}
    _call(
        as_json,
        api.radiomics_extract,
        images,
        out=out,
        masks=masks or None,
        roi=roi,
        config_path=config,
        overrides=overrides,
        keep_copies=keep_copies,
        robustness_images=robustness,
        strict=strict,
    )


@radiomics_app.command("deep-features")
def radiomics_deep_features(
    images: Annotated[list[Path], typer.Option("--images", "-i", help="Image files or folders (repeatable).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output features .parquet (the --fuse table).")],
    backbone: Annotated[
        str, typer.Option("--backbone", help="ImageNet backbone (see 'liverfib models').")
    ] = "tf_efficientnet_lite0",
    img_size: Annotated[int, typer.Option("--img-size", help="Network input side in pixels.")] = 224,
    keep_copies: Annotated[
        bool, typer.Option("--keep-copies", help="Extract byte-identical copies separately.")
    ] = False,
    strict: StrictFlag = False,
    device: DeviceOpt = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """Deep features (ImageNet backbone, no fibrosis labels) per distinct image, for 'radiomics train --fuse'."""
    _call(as_json, api.radiomics_deep_features, images, out=out, backbone=backbone, img_size=img_size,
          keep_copies=keep_copies, strict=strict, device=device)


@radiomics_app.command("train")
def radiomics_train(
    features: Annotated[Path, typer.Option("--features", help="Features .parquet from 'radiomics extract'.")],
    split_csv: Annotated[Path, typer.Option("--split", help="Split CSV ('liverfib split', --folds for CV).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (model.joblib, metrics.json, SHAP plots).")],
    data: Annotated[
        Path | None, typer.Option("--data", help="Dataset root the split's relative paths start from.")
    ] = None,
    algorithm: Annotated[str | None, typer.Option("--algorithm", help="Classifier: lr, rf, svm or gb.")] = None,
    algorithm_old: Annotated[str | None, typer.Option("--model", hidden=True)] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Train YAML (e.g. configs/radiomics_train.yaml).")
    ] = None,
    fuse: Annotated[
        list[Path] | None,
        typer.Option("--fuse", help="Other feature .parquet (DL, clinical) to stack with (repeatable)."),
    ] = None,
    n_boot: Annotated[int | None, typer.Option("--n-boot", help="Bootstrap resamples for CIs.")] = None,
    shap_images: Annotated[
        int | None, typer.Option("--shap-images", help="Images in the SHAP summary (0 = none).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Nested grouped CV (K-fold split) or train/test fit; metrics with CIs; SHAP plots."""
    overrides = {
        k: v
        for k, v in dict(
            model=_renamed(algorithm, algorithm_old, "--model", "--algorithm"), n_boot=n_boot, shap_images=shap_images
        ).items()
        if v is not None
    }
    _call(
        as_json,
        api.radiomics_train,
        features=features,
        split=split_csv,
        out=out,
        data_dir=data,
        config_path=config,
        overrides=overrides,
        fuse=fuse or (),
    )


@radiomics_app.command("evaluate")
def radiomics_evaluate(
    model: Annotated[Path, typer.Option("--model", help="model.joblib from 'radiomics train'.")],
    features: Annotated[Path, typer.Option("--features", help="Features .parquet of the images.")],
    split_csv: Annotated[Path, typer.Option("--split", help="Split CSV with labels.")],
    data: Annotated[
        Path | None, typer.Option("--data", help="Dataset root the split's relative paths start from.")
    ] = None,
    subset: Annotated[
        str, typer.Option("--subset", help="Split rows to evaluate (test, fold0, ...).")
    ] = "test",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for predictions, metrics, SHAP.")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for CIs.")] = 1000,
    explain: Annotated[int, typer.Option("--explain", help="Per-image SHAP waterfalls to write.")] = 1,
    allow_overlap: Annotated[
        bool, typer.Option("--allow-overlap", help="Score rows the model was fit on anyway (flagged; optimistic).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Metrics with cluster-bootstrap 95% CIs for a trained radiomics model (never on its training rows)."""
    _call(
        as_json,
        api.radiomics_evaluate,
        model=model,
        features=features,
        split=split_csv,
        data_dir=data,
        subset=subset,
        out_dir=out,
        n_boot=n_boot,
        explain=explain,
        allow_overlap=allow_overlap,
    )
