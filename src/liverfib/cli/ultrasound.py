"""Ultrasound staging commands: audit, split, evaluate, predict, train, models, explain, pseudo-masks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liverfib import api
from liverfib.cli._app import (
    DataDir,
    DeviceOpt,
    InputOpt,
    JsonFlag,
    ModelOpt,
    StrictFlag,
    _call,
    _inputs,
    _renamed,
    app,
)


@app.command()
def audit(
    data_dir: DataDir,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="CSV with path,label[,patient] instead of sub-folders.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for audit.json, files.csv and audit.html.")
    ] = None,
    near_threshold: Annotated[
        float, typer.Option("--near-threshold", help="Fan-descriptor correlation linking same-scan frames.")
    ] = 0.85,
    cnn_threshold: Annotated[
        float, typer.Option("--cnn-threshold", help="Lite0-feature cosine that also links same-scan frames.")
    ] = 0.82,
    cnn: Annotated[bool, typer.Option("--cnn/--no-cnn", help="Use the CNN-feature links (slower).")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Find copies, same-scan frames, label conflicts and source/label confounding."""
    _call(as_json, api.audit, data_dir, labels=labels, out=out, near_threshold=near_threshold,
          cnn_threshold=cnn_threshold, cnn=cnn)


@app.command()
def split(
    data_dir: DataDir,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output CSV (path,label,group,cluster,source,split).")],
    labels: Annotated[Path | None, typer.Option("--labels", help="CSV with path,label[,patient].")] = None,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Validation fraction.")] = 0.15,
    test_fraction: Annotated[float, typer.Option("--test-fraction", help="Test fraction.")] = 0.15,
    val_old: Annotated[float | None, typer.Option("--val", hidden=True)] = None,
    test_old: Annotated[float | None, typer.Option("--test", hidden=True)] = None,
    folds: Annotated[int | None, typer.Option("--folds", help="Grouped stratified K-fold instead.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    naive: Annotated[
        bool, typer.Option("--naive", help="Random per-file split (LEAKY; only to demonstrate leakage).")
    ] = False,
    near_threshold: Annotated[float, typer.Option("--near-threshold", help="As in audit.")] = 0.85,
    cnn_threshold: Annotated[float, typer.Option("--cnn-threshold", help="As in audit.")] = 0.82,
    cnn: Annotated[bool, typer.Option("--cnn/--no-cnn", help="As in audit.")] = True,
    strict: StrictFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Write a split where near-duplicate clusters never straddle train/val/test."""
    _call(
        as_json,
        api.split,
        data_dir,
        out=out,
        labels=labels,
        val_fraction=_renamed(val_fraction, val_old, "--val", "--val-fraction"),
        test_fraction=_renamed(test_fraction, test_old, "--test", "--test-fraction"),
        folds=folds,
        seed=seed,
        naive=naive,
        near_threshold=near_threshold,
        cnn_threshold=cnn_threshold,
        cnn=cnn,
        strict=strict,
    )


@app.command()
def evaluate(
    model: Annotated[str | None, typer.Option("--model", help="'default' or a model bundle (the model/ folder a training run writes, or its .zip).")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Dataset root (with --model).")] = None,
    split_csv: Annotated[
        Path | None, typer.Option("--split", help="Split CSV from 'liverfib split'.")
    ] = None,
    subset: Annotated[str, typer.Option("--subset", help="Which split rows to evaluate.")] = "test",
    predictions: Annotated[
        Path | None, typer.Option("--predictions", help="CSV path,label,prob_F0..prob_F4[,group,source].")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for metrics.json and plots.")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for the 95% CIs.")] = 1000,
    keep_copies: Annotated[
        bool, typer.Option("--keep-copies", help="Count byte-identical copies separately (leaky view).")
    ] = False,
    cam: Annotated[
        bool, typer.Option("--cam", help="Add the per-source CAM shortcut check (see --cam-method).")
    ] = False,
    cam_method: Annotated[
        str, typer.Option("--cam-method", help="CAM method for --cam: gradcam | gradcam++ | scorecam | ...")
    ] = "gradcam",
    labels: Annotated[
        Path | None, typer.Option("--labels", help="CSV path,label[,patient] for --data without --split.")
    ] = None,
    device: DeviceOpt = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """Metrics with cluster-bootstrap 95% CIs, from a model or a predictions CSV.

    With --model and --data but no --split, the whole labelled folder is scored (your own data);
    bootstrap groups are the audit's same-scan clusters."""
    _call(
        as_json,
        api.evaluate,
        model=model,
        data=data,
        split=split_csv,
        subset=subset,
        predictions=predictions,
        out=out,
        n_boot=n_boot,
        keep_copies=keep_copies,
        cam=cam_method if cam else None,
        labels_csv=labels,
        device=device,
    )


@app.command()
def predict(
    paths: Annotated[list[Path] | None, typer.Argument(help="Image files, folders or DICOM files.")] = None,
    inputs: InputOpt = None,
    model: Annotated[
        str, typer.Option("--model", help="'default' (shipped) or a model bundle folder/.zip.")
    ] = "default",
    tta: Annotated[bool, typer.Option("--tta", help="Average over a horizontal flip.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 16,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Predictions .csv file (one file; written only on success).")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="auto (ONNX Runtime when installed) | torch | onnx. Same weights.")
    ] = "auto",
    strict: StrictFlag = False,
    device: DeviceOpt = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """METAVIR stage F0..F4 with probabilities for B-mode liver ultrasound images."""
    _call(as_json, api.predict, _inputs(paths, inputs), model=model, tta=tta, batch_size=batch_size, out=out,
          engine=engine, strict=strict, device=device)


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="Dataset root (F0..F4 sub-folders).")],
    split_csv: Annotated[Path, typer.Option("--split", help="Split CSV from 'liverfib split'.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (checkpoint, log.csv, config.yaml).")],
    backbone: Annotated[
        str | None,
        typer.Option(
            "--backbone", help="Backbone name (see 'liverfib models'; default tf_efficientnet_lite0)."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML config; CLI flags override it.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Epochs of fine-tuning (0 = frozen features).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Batch size.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate.")] = None,
    img_size: Annotated[int | None, typer.Option("--img-size", help="Input side in pixels.")] = None,
    device: DeviceOpt = "cpu",
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 0).")] = None,
    val_subset: Annotated[
        str, typer.Option("--val-subset", help="Split rows used for model selection.")
    ] = "val",
    threads: Annotated[
        int | None,
        typer.Option("--threads", help="CPU threads for torch (1 avoids oversubscription on busy machines)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train a staging model on the train rows of a split; select on the val rows."""
    overrides = {
        k: v
        for k, v in dict(
            backbone=backbone, seed=seed, epochs=epochs, batch_size=batch_size, lr=lr, img_size=img_size
        ).items()
        if v is not None
    }
    _call(
        as_json,
        api.train,
        data=data,
        split=split_csv,
        out=out,
        config=config,
        **overrides,
        device=device,
        val_subset=val_subset,
        threads=threads,
    )


@app.command("models")
def models_(
    pattern: Annotated[str, typer.Argument(help="Glob over model names or tasks.")] = "*",
    as_json: JsonFlag = False,
) -> None:
    """Shipped models per task (measured figure, its source, size) and the staging backbones."""
    _call(as_json, api.models, pattern)



@app.command()
def explain(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for heatmaps, overlays and explain.json.")],
    paths: Annotated[list[Path] | None, typer.Argument(help="Image files or folders (PNG/JPEG/DICOM...).")] = None,
    inputs: InputOpt = None,
    model: ModelOpt = "default",
    method: Annotated[
        str, typer.Option("--method", help="gradcam | gradcam++ | scorecam | eigencam | layercam.")
    ] = "gradcam",
    target: Annotated[str, typer.Option("--target", help="'predicted' or a stage F0..F4.")] = "predicted",
    layers: Annotated[
        str, typer.Option("--layers", help="'all' (every pooled stage + last conv) or 'final' (last conv).")
    ] = "all",
    liver_model: Annotated[
        str, typer.Option("--liver-model", help="Liver segmenter for the CAM-in-liver share: 'default', a "
                          "checkpoint, or 'none'.")
    ] = "default",
    faithfulness: Annotated[
        bool, typer.Option("--faithfulness", help="Also score ROAD faithfulness vs random maps (slow).")
    ] = False,
    device: DeviceOpt = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """Class-activation maps (pytorch-grad-cam): heatmap + overlay per image, CAM statistics."""
    _call(as_json, api.explain, _inputs(paths, inputs), out=out, model=model, method=method, target=target, layers=layers,
         liver_model=None if liver_model == "none" else liver_model, faithfulness=faithfulness, device=device)


@app.command("pseudo-masks")
def pseudo_masks(
    data: Annotated[Path, typer.Option("--data", help="Labelled folder (F0..F4 sub-folders).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for masks/ and manifest.csv.")],
    model: ModelOpt = "default",
    method: Annotated[str, typer.Option("--method", help="CAM method (see 'explain').")] = "gradcam",
    threshold: Annotated[
        str, typer.Option("--threshold", help="0..1 (0.5 as published), 'otsu' or 'pNN' (percentile in the fan).")
    ] = "0.5",
    device: DeviceOpt = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """CAM -> binary pseudo-masks (restricted to the fan) for every distinct image; copies once."""
    _call(as_json, api.pseudo_masks, data, out=out, model=model, method=method, threshold=threshold, device=device)
