"""MRI staging commands: mri-inspect, predict-mri, train-mri."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liverfib import api
from liverfib.cli._app import DeviceOpt, JsonFlag, _call, _renamed, app


@app.command("mri-inspect")
def mri_inspect(
    root: Annotated[Path, typer.Argument(help="LiQA root (Vendor_*), CirrMRI600+ root (Cirrhosis_T*_3D) or a case.")],
    labels: Annotated[
        Path | None, typer.Option("--labels", help="CirrMRI600+ labels CSV (radiological evaluation 1-3).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List MRI exams: vendor, stage, phases present and missing, masks."""
    _call(as_json, api.mri_inspect, root, labels=labels)


@app.command("predict-mri")
def predict_mri(
    path: Annotated[Path, typer.Argument(
        help="LiQA case folder or LiQA root (Vendor_*); for a CirrMRI600+ model: a NIfTI volume or a CirrMRI600+ root.")],
    model: Annotated[
        str, typer.Option("--model", help="'default' (shipped LiQA model, trained on SYNTHETIC data) or a train-mri model bundle (run/model).")
    ] = "default",
    seg_model: Annotated[
        str, typer.Option("--seg-model", help="Liver segmenter for scans without a mask.")
    ] = "default",
    phases: Annotated[
        str | None, typer.Option("--phases", help="LiQA: comma-separated subset of phases to use (default: all present).")
    ] = None,
    mask: Annotated[
        Path | None, typer.Option("--mask", help="CirrMRI600+ volume: its liver mask (.nii.gz, same grid).")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="CirrMRI600+ root: labels CSV (fills the label column).")
    ] = None,
    subset: Annotated[str, typer.Option("--subset", help="CirrMRI600+ root: train | valid | test | all.")] = "test",
    split_old: Annotated[str | None, typer.Option("--split", hidden=True)] = None,
    unit: Annotated[
        str, typer.Option("--unit", help="CirrMRI600+ --out rows: patient (mean of slices) | slice.")
    ] = "patient",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Predictions CSV for 'liverfib evaluate --predictions'.")
    ] = None,
    device: DeviceOpt = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """Stage MRI: LiQA P(S4), P(S2-S4), stage, phases used (any subset); CirrMRI600+ mild/moderate/severe."""
    chosen = [p.strip() for p in phases.split(",") if p.strip()] if phases else None
    _call(as_json, api.predict_mri, path, model=model, seg_model=seg_model, phases=chosen, mask=mask,
          labels_csv=labels, split=_renamed(subset, split_old, "--split", "--subset"), unit=unit, out=out, device=device)


app.command("mri-stage", hidden=True)(predict_mri)  # old name, kept working


@app.command("train-mri")
def train_mri(
    data: Annotated[Path, typer.Option("--data", help="LiQA root (Vendor_*/NNNN-V-Sk/) or CirrMRI600+ root.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (model bundle model/, metrics.json, predictions CSVs).")],
    layout: Annotated[str, typer.Option("--layout", help="auto (from the folders) | liqa | cirrmri.")] = "auto",
    sequence: Annotated[str | None, typer.Option("--sequence", help="cirrmri: T1 or T2.")] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="cirrmri: labels CSV (id + radiological evaluation 1-3).")
    ] = None,
    fusion: Annotated[str, typer.Option("--fusion", help="liqa: consensus | attention.")] = "consensus",
    encoder: Annotated[str, typer.Option("--encoder", help="small_cnn | tf_efficientnet_lite0.")] = "small_cnn",
    steps: Annotated[int, typer.Option("--steps", help="Training steps (liqa: batch 8 exams; cirrmri: 32 slices).")] = 250,
    cam_weight: Annotated[float, typer.Option("--cam-weight", help="liqa: weight of the CAM-outside-liver penalty.")] = 0.5,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="liqa: fraction of subjects held out for validation.")
    ] = 0.25,
    val_old: Annotated[float | None, typer.Option("--val", hidden=True)] = None,
    n_slices: Annotated[int, typer.Option("--n-slices", help="cirrmri: 2.5D liver slices per scan.")] = 16,
    crop_size: Annotated[
        int | None, typer.Option("--crop-size", help="Liver crop side in pixels (default liqa 48, cirrmri 64).")
    ] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for the 95% CIs.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads for torch.")] = 1,
    device: DeviceOpt = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """Train MRI staging: LiQA multi-phase (S1..S4) or CirrMRI600+ per-slice (mild/moderate/severe); held-out metrics."""
    _call(as_json, api.train_mri, data, out=out, layout=layout, sequence=sequence, labels_csv=labels,
          fusion=fusion, encoder=encoder, steps=steps, cam_weight=cam_weight,
          val_fraction=_renamed(val_fraction, val_old, "--val", "--val-fraction"), n_slices=n_slices,
          crop_size=crop_size, n_boot=n_boot, seed=seed, threads=threads, device=device)


app.command("mri-train", hidden=True)(train_mri)  # old name, kept working
