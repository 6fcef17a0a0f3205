"""Command-line interface: parses options and calls :mod:`liverfib.pipeline`; no logic here.

Heavy imports (torch, cv2, sklearn) happen inside commands so ``liverfib --help`` is instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from liverfib import __version__
from liverfib.errors import LiverfibError

app = typer.Typer(
    name="liverfib",
    help="Liver fibrosis assessment from medical images (research use only).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"liverfib {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """liverfib: audit data, stage fibrosis, evaluate honestly."""


def _emit(result: Any, as_json: bool, text: str) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        typer.echo(text)


def _fail(exc: LiverfibError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def _run(as_json: bool, name: str, *args: Any, **kwargs: Any) -> None:
    """Call ``pipeline.<name>``; print its text or JSON; turn a LiverfibError into one line + exit 2."""
    from liverfib import pipeline

    try:
        summary, text = getattr(pipeline, name)(*args, **kwargs)
    except LiverfibError as exc:
        _fail(exc)
    _emit(summary, as_json, text)


DataDir = Annotated[Path, typer.Argument(help="Dataset root: one sub-folder per label (F0..F4).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command()
def audit(
    data_dir: DataDir,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="CSV with path,label[,patient] instead of sub-folders.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for audit.json, files.csv and audit.html.")
    ] = None,
    near_threshold: Annotated[
        float, typer.Option("--near-threshold", help="Descriptor correlation linking near-duplicates.")
    ] = 0.90,
    as_json: JsonFlag = False,
) -> None:
    """Find copies, near-duplicates, label conflicts and source/label confounding."""
    _run(as_json, "run_audit", data_dir, labels_csv=labels, out_dir=out, near_threshold=near_threshold)


@app.command()
def split(
    data_dir: DataDir,
    out: Annotated[Path, typer.Option("--out", help="Output CSV (path,label,group,cluster,source,split).")],
    labels: Annotated[Path | None, typer.Option("--labels", help="CSV with path,label[,patient].")] = None,
    val: Annotated[float, typer.Option("--val", help="Validation fraction.")] = 0.15,
    test: Annotated[float, typer.Option("--test", help="Test fraction.")] = 0.15,
    folds: Annotated[int | None, typer.Option("--folds", help="Grouped stratified K-fold instead.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    naive: Annotated[
        bool, typer.Option("--naive", help="Random per-file split (LEAKY; only to demonstrate leakage).")
    ] = False,
    near_threshold: Annotated[float, typer.Option("--near-threshold", help="As in audit.")] = 0.90,
    as_json: JsonFlag = False,
) -> None:
    """Write a split where near-duplicate clusters never straddle train/val/test."""
    _run(
        as_json,
        "run_split",
        data_dir,
        out,
        labels_csv=labels,
        val=val,
        test=test,
        folds=folds,
        seed=seed,
        naive=naive,
        near_threshold=near_threshold,
    )


@app.command()
def evaluate(
    model: Annotated[str | None, typer.Option("--model", help="'default' or a checkpoint path.")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Dataset root (with --model).")] = None,
    split_csv: Annotated[
        Path | None, typer.Option("--split", help="Split CSV from 'liverfib split'.")
    ] = None,
    subset: Annotated[str, typer.Option("--subset", help="Which split rows to evaluate.")] = "test",
    predictions: Annotated[
        Path | None, typer.Option("--predictions", help="CSV path,label,prob_F0..prob_F4[,group,source].")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for metrics.json and plots.")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for the 95% CIs.")] = 1000,
    keep_copies: Annotated[
        bool, typer.Option("--keep-copies", help="Count byte-identical copies separately (leaky view).")
    ] = False,
    cam: Annotated[
        str | None, typer.Option("--cam", help="CAM method (e.g. gradcam): add the per-source shortcut check.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Metrics with cluster-bootstrap 95% CIs, from a model or a predictions CSV."""
    _run(
        as_json,
        "run_evaluate",
        model=model,
        data_dir=data,
        split_csv=split_csv,
        subset=subset,
        predictions_csv=predictions,
        out_dir=out,
        n_boot=n_boot,
        keep_copies=keep_copies,
        cam=cam,
    )


@app.command()
def predict(
    paths: Annotated[list[Path], typer.Argument(help="Image files, folders or DICOM files.")],
    model: Annotated[
        str, typer.Option("--model", help="'default' (shipped) or a checkpoint path.")
    ] = "default",
    tta: Annotated[bool, typer.Option("--tta", help="Average over a horizontal flip.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 16,
    out: Annotated[Path | None, typer.Option("--out", help="Write predictions.csv here.")] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="auto (ONNX Runtime when installed) | torch | onnx. Same weights.")
    ] = "auto",
    as_json: JsonFlag = False,
) -> None:
    """METAVIR stage F0..F4 with probabilities for B-mode liver ultrasound images."""
    _run(as_json, "run_predict", paths, model=model, tta=tta, batch_size=batch_size, out_csv=out, engine=engine)


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="Dataset root (F0..F4 sub-folders).")],
    split_csv: Annotated[Path, typer.Option("--split", help="Split CSV from 'liverfib split'.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder (checkpoint, log.csv, config.yaml).")],
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
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
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
    _run(
        as_json,
        "run_train",
        data,
        split_csv,
        out,
        config_path=config,
        overrides=overrides,
        device=device,
        val_subset=val_subset,
        threads=threads,
    )


@app.command("models")
def models_(
    pattern: Annotated[str, typer.Argument(help="Glob over registered names.")] = "*",
) -> None:
    """List registered staging backbones and where their weights come from."""
    from liverfib.models.registry import describe_models

    for name, origin in describe_models(pattern):
        typer.echo(f"{name:28s} {origin}")


# ============================== explain/segment commands ==============================
ImagePaths = Annotated[list[Path], typer.Argument(help="Image files or folders (PNG/JPEG/DICOM...).")]
ModelOpt = Annotated[str, typer.Option("--model", help="'default' (shipped) or a checkpoint path.")]


@app.command()
def explain(
    paths: ImagePaths,
    out: Annotated[Path, typer.Option("--out", help="Folder for heatmaps, overlays and explain.json.")],
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
    as_json: JsonFlag = False,
) -> None:
    """Class-activation maps (pytorch-grad-cam): heatmap + overlay per image, CAM statistics."""
    _run(as_json, "run_explain", paths, out_dir=out, model=model, method=method, target=target, layers=layers,
         liver_model=None if liver_model == "none" else liver_model, faithfulness=faithfulness)


@app.command("pseudo-masks")
def pseudo_masks(
    data: Annotated[Path, typer.Option("--data", help="Labelled folder (F0..F4 sub-folders).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for masks/ and manifest.csv.")],
    model: ModelOpt = "default",
    method: Annotated[str, typer.Option("--method", help="CAM method (see 'explain').")] = "gradcam",
    threshold: Annotated[
        str, typer.Option("--threshold", help="0..1 (0.5 as published), 'otsu' or 'pNN' (percentile in the fan).")
    ] = "0.5",
    as_json: JsonFlag = False,
) -> None:
    """CAM -> binary pseudo-masks (restricted to the fan) for every distinct image; copies once."""
    _run(as_json, "run_pseudo_masks", data, out_dir=out, model=model, method=method, threshold=threshold)


@app.command()
def segment(
    paths: Annotated[list[Path], typer.Argument(help="Images (us) or volumes/slices (mr, ct).")],
    out: Annotated[Path, typer.Option("--out", help="us: folder for masks/overlays; mr/ct: mask.nii.gz or folder.")],
    modality: Annotated[str, typer.Option("--modality", help="us | mr | ct.")] = "us",
    model: ModelOpt = "default",
    as_json: JsonFlag = False,
) -> None:
    """Liver segmentation: <stem>_mask.png (0/255, input size) + <stem>_overlay.png; area px / mm²."""
    _run(as_json, "run_segment", paths, modality=modality, out=out, model=model)


@app.command("train-seg")
def train_seg(
    task: Annotated[str, typer.Option("--task", help="Segmentation task; see 'liverfib train-seg --list'.")] = "",
    data: Annotated[Path | None, typer.Option("--data", help="Training data folder for the task.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder (model.pt, log.csv, config.yaml).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML with training options.")] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="Network (registry name).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Training epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Batch size.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate.")] = None,
    img_size: Annotated[int | None, typer.Option("--img-size", help="Network input side (pixels).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share of groups (subjects/clusters) held out and scored.")
    ] = 0.0,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for torch.")] = None,
    list_tasks: Annotated[bool, typer.Option("--list", help="List the tasks and exit.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Train a segmentation network for a task (us-liver, cam-us, mre, ...)."""
    from liverfib.training.seg_tasks import list_seg_tasks

    if list_tasks or not task:
        for t in list_seg_tasks():
            typer.echo(f"{t.name:10s} {t.help}")
        if not list_tasks:
            _fail(LiverfibError("--task is required (choices listed above)"))
        return
    if data is None or out is None:
        _fail(LiverfibError("--data and --out are required"))
    overrides = {k: v for k, v in dict(arch=arch, epochs=epochs, batch_size=batch_size, lr=lr,
                                       img_size=img_size, seed=seed).items() if v is not None}
    _run(as_json, "run_train_seg", task, data, out_dir=out, config=config, overrides=overrides,
         val_fraction=val_fraction, threads=threads)
# (end of explain/segment commands)

# ============================== mre commands ==============================
# `phantom` is a sub-app so other modalities can add theirs: `@phantom_app.command("mri")`.
phantom_app = typer.Typer(help="Write synthetic exams with ground truth (DICOM + truth.json).", no_args_is_help=True)
app.add_typer(phantom_app, name="phantom")


@phantom_app.command("mre")
def phantom_mre(
    out: Annotated[Path, typer.Option("--out", help="Folder; one sub-folder per exam.")],
    n: Annotated[int, typer.Option("--n", help="Number of exams (stages cycle F0..F4).")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed; different seeds give disjoint exams.")] = 0,
    vendor: Annotated[
        str | None, typer.Option("--vendor", help="siemens | ge (default: alternate every 5 exams).")
    ] = None,
    variant: Annotated[
        str, typer.Option("--variant", help="standard | independent (other shapes and noise, for held-out tests).")
    ] = "standard",
    fmt: Annotated[
        str, typer.Option("--format", help="dicom (Siemens/GE series) | nifti (magnitude/stiffness/confidence.nii.gz).")
    ] = "dicom",
    as_json: JsonFlag = False,
) -> None:
    """SYNTHETIC MR elastography exams with truth.json (true liver mask, true stiffness field).

    Examples: liverfib phantom mre --out ph --n 10 | liverfib phantom mre --out test --seed 2000 --variant independent --format nifti
    """
    _run(as_json, "run_phantom_mre", n, seed, out, vendor=vendor, variant=variant, fmt=fmt)


@app.command()
def mre(
    exam_dir: Annotated[Path, typer.Argument(
        help="Exam folder: MRE DICOM series (any sub-folders) or magnitude/stiffness[/confidence].nii.gz; "
             "a folder of several exams measures each (one row per exam, mre.csv with --out).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for mre.json, masks and overlay_slice<k>.png.")
    ] = None,
    model: Annotated[str, typer.Option("--model", help="'default' (shipped) or a train-seg checkpoint.")] = "default",
    mask: Annotated[
        Path | None, typer.Option("--mask", help="Liver mask (D,H,W) .nii.gz/.npy instead of the model.")
    ] = None,
    cutoffs: Annotated[
        Path | None, typer.Option("--cutoffs", help="YAML cut-off table f1_kpa..f4_kpa (default: cited table).")
    ] = None,
    confidence: Annotated[float, typer.Option("--confidence", help="Minimum confidence (%) in the ROI.")] = 95.0,
    edge_margin: Annotated[float, typer.Option("--edge-margin", help="Liver edge excluded (mm).")] = 4.0,
    stiffness_units: Annotated[
        str | None, typer.Option("--stiffness-units", help="kPa | Pa, only if the files do not say.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Liver stiffness (kPa, area-weighted over slices) and stage from MRE exams (DICOM or NIfTI).

    Examples: liverfib mre exam/ --out res | liverfib mre exams/ --out res --json (one row per exam in res/mre.csv)
    """
    _run(as_json, "run_mre", exam_dir, out_dir=out, model=model, mask=mask, cutoffs=cutoffs,
         confidence_min_pct=confidence, edge_margin_mm=edge_margin, stiffness_units=stiffness_units)


@app.command()
def agreement(
    a: Annotated[Path, typer.Option("--a", help="CSV exam,mean_stiffness_kpa[,stage][,mask] (e.g. automatic).")],
    b: Annotated[Path, typer.Option("--b", help="Same columns (e.g. manual or truth); B is the reference.")],
    out: Annotated[Path | None, typer.Option("--out", help="Folder for agreement.json and bland_altman.png.")] = None,
    cutoffs: Annotated[Path | None, typer.Option("--cutoffs", help="YAML cut-off table for missing stages.")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for kappa/Dice CIs.")] = 2000,
    as_json: JsonFlag = False,
) -> None:
    """Pearson r, ICC(2,1)/(3,1), Bland-Altman, stage kappa, per-stage Dice/IoU, all with 95% CIs."""
    _run(as_json, "run_agreement", a, b, out_dir=out, cutoffs=cutoffs, n_boot=n_boot)
# (end of mre commands)

# ============================== mri commands ==============================
@phantom_app.command("mri")
def phantom_mri(
    out: Annotated[Path, typer.Option("--out", help="Dataset root (LiQA: Vendor_*/NNNN-V-Sk/; CirrMRI600+: Cirrhosis_T*_3D/).")],
    layout: Annotated[str, typer.Option("--layout", help="liqa (7 phases, S1..S4) | cirrmri (T1 + T2, grades 1-3).")] = "liqa",
    n: Annotated[int, typer.Option("--n", help="Subjects (liqa: stages cycle S1..S4; cirrmri: grades cycle 1-3, >= 9).")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed; different seeds give different subjects.")] = 0,
    p_missing: Annotated[float, typer.Option("--p-missing", help="liqa: chance that each phase is absent.")] = 0.15,
    size: Annotated[int, typer.Option("--size", help="In-plane matrix (pixels).")] = 96,
    slices: Annotated[int, typer.Option("--slices", help="Number of axial slices.")] = 32,
    as_json: JsonFlag = False,
) -> None:
    """SYNTHETIC liver MRI in the LiQA layout (T1, T2, DWI_800, GED1..GED4, mask_GED4) or the CirrMRI600+ layout."""
    _run(as_json, "run_mri_phantom", out, layout=layout, n_subjects=n, seed=seed, p_missing=p_missing, size=size,
         slices=slices)


@app.command("mri-inspect")
def mri_inspect(
    root: Annotated[Path, typer.Argument(help="LiQA root (Vendor_*), CirrMRI600+ root (Cirrhosis_T*_3D) or a case.")],
    labels: Annotated[
        Path | None, typer.Option("--labels", help="CirrMRI600+ labels CSV (radiological evaluation 1-3).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List MRI exams: vendor, stage, phases present and missing, masks."""
    _run(as_json, "run_mri_inspect", root, labels_csv=labels)


@app.command("predict-mri")
def predict_mri(
    path: Annotated[Path, typer.Argument(
        help="LiQA case folder or LiQA root (Vendor_*); for a CirrMRI600+ model: a NIfTI volume or a CirrMRI600+ root.")],
    model: Annotated[
        str, typer.Option("--model", help="'default' (shipped LiQA model, trained on SYNTHETIC data) or a train-mri model.pt.")
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
    split: Annotated[str, typer.Option("--split", help="CirrMRI600+ root: train | valid | test | all.")] = "test",
    unit: Annotated[
        str, typer.Option("--unit", help="CirrMRI600+ --out rows: patient (mean of slices) | slice.")
    ] = "patient",
    out: Annotated[
        Path | None, typer.Option("--out", help="Predictions CSV for 'liverfib evaluate --predictions'.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Stage MRI: LiQA P(S4), P(S2-S4), stage, phases used (any subset); CirrMRI600+ mild/moderate/severe."""
    chosen = [p.strip() for p in phases.split(",") if p.strip()] if phases else None
    _run(as_json, "run_mri_stage", path, model=model, seg_model=seg_model, phases=chosen, mask=mask,
         labels_csv=labels, split=split, unit=unit, out_csv=out)


app.command("mri-stage", hidden=True)(predict_mri)  # old name, kept working


@app.command("train-mri")
def train_mri(
    data: Annotated[Path, typer.Option("--data", help="LiQA root (Vendor_*/NNNN-V-Sk/) or CirrMRI600+ root.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder (model.pt, metrics.json, predictions CSVs).")],
    layout: Annotated[str, typer.Option("--layout", help="auto (from the folders) | liqa | cirrmri.")] = "auto",
    sequence: Annotated[str | None, typer.Option("--sequence", help="cirrmri: T1 or T2.")] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="cirrmri: labels CSV (id + radiological evaluation 1-3).")
    ] = None,
    fusion: Annotated[str, typer.Option("--fusion", help="liqa: consensus | attention.")] = "consensus",
    encoder: Annotated[str, typer.Option("--encoder", help="small_cnn | tf_efficientnet_lite0.")] = "small_cnn",
    steps: Annotated[int, typer.Option("--steps", help="Training steps (liqa: batch 8 exams; cirrmri: 32 slices).")] = 250,
    cam_weight: Annotated[float, typer.Option("--cam-weight", help="liqa: weight of the CAM-outside-liver penalty.")] = 0.5,
    val: Annotated[float, typer.Option("--val", help="liqa: fraction of subjects held out for validation.")] = 0.25,
    n_slices: Annotated[int, typer.Option("--n-slices", help="cirrmri: 2.5D liver slices per scan.")] = 16,
    crop_size: Annotated[
        int | None, typer.Option("--crop-size", help="Liver crop side in pixels (default liqa 48, cirrmri 64).")
    ] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for the 95% CIs.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads for torch.")] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Train MRI staging: LiQA multi-phase (S1..S4) or CirrMRI600+ per-slice (mild/moderate/severe); held-out metrics."""
    _run(as_json, "run_mri_train", data, out, layout=layout, sequence=sequence, labels_csv=labels, fusion=fusion,
         encoder=encoder, steps=steps, cam_weight=cam_weight, val_fraction=val, n_slices=n_slices, crop_size=crop_size,
         n_boot=n_boot, seed=seed, threads=threads)


app.command("mri-train", hidden=True)(train_mri)  # old name, kept working
# (end of mri commands)

# ============================== radiomics commands ==============================
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
        Path, typer.Option("--out", help="Output features .parquet (settings go to .yaml beside).")
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
    as_json: JsonFlag = False,
) -> None:
    """Extract pyradiomics features (one row per distinct image) into a Parquet table."""
    overrides = {k: v for k, v in dict(bin_width=bin_width, workers=workers).items() if v is not None}
    _run(
        as_json,
        "run_radiomics_extract",
        images,
        out,
        masks=masks or None,
        roi=roi,
        config_path=config,
        overrides=overrides,
        keep_copies=keep_copies,
        robustness_images=robustness,
    )


@radiomics_app.command("train")
def radiomics_train(
    features: Annotated[Path, typer.Option("--features", help="Features .parquet from 'radiomics extract'.")],
    split_csv: Annotated[Path, typer.Option("--split", help="Split CSV ('liverfib split', --folds for CV).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder (model.joblib, metrics.json, SHAP plots).")],
    data: Annotated[
        Path | None, typer.Option("--data", help="Dataset root the split's relative paths start from.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="lr, rf, svm or gb.")] = None,
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
        k: v for k, v in dict(model=model, n_boot=n_boot, shap_images=shap_images).items() if v is not None
    }
    _run(
        as_json,
        "run_radiomics_train",
        features,
        split_csv,
        out,
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
    out: Annotated[Path | None, typer.Option("--out", help="Folder for predictions, metrics, SHAP.")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for CIs.")] = 1000,
    explain: Annotated[int, typer.Option("--explain", help="Per-image SHAP waterfalls to write.")] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Metrics with cluster-bootstrap 95% CIs for a trained radiomics model."""
    _run(
        as_json,
        "run_radiomics_evaluate",
        model,
        features,
        split_csv,
        data_dir=data,
        subset=subset,
        out_dir=out,
        n_boot=n_boot,
        explain=explain,
    )


# (end of radiomics commands)

# ============================== clinical commands ==============================
DataFolder = Annotated[
    Path, typer.Option("--data", help="Folder for the job database, received files and results.")
]


@app.command()
def deidentify(
    src: Annotated[Path, typer.Argument(help="A DICOM file or a folder of DICOM files.")],
    out: Annotated[Path, typer.Argument(help="Output folder (files named by their new SOPInstanceUID).")],
    salt: Annotated[
        str | None,
        typer.Option("--salt", help="Secret for new UIDs/pseudonyms (default: $LIVERFIB_DEID_SALT)."),
    ] = None,
    keep_text: Annotated[
        bool, typer.Option("--keep-burned-in", help="Do not blank pixels outside the ultrasound fan.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """De-identify DICOM (Basic Confidentiality Profile; burned-in text outside the US fan blanked)."""
    _run(as_json, "run_deidentify", src, out, salt=salt, mask_burned_in=not keep_text)


@app.command("serve-dicom")
def serve_dicom(
    ae_title: Annotated[str, typer.Option("--ae-title", help="Our AE title.")] = "LIVERFIB",
    port: Annotated[int, typer.Option("--port", help="DICOM port to listen on.")] = 11112,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "0.0.0.0",
    allow: Annotated[
        str, typer.Option("--allow", help="Comma-separated calling AE titles that may send ('*' = any).")
    ] = "",
    forward: Annotated[
        str | None, typer.Option("--forward", help="Send SEG/SR/SC results to HOST:PORT:AET by C-STORE.")
    ] = None,
    data: DataFolder = Path("liverfib-data"),
    cam: Annotated[bool, typer.Option("--cam/--no-cam", help="Grad-CAM overlay and pseudo-mask.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """DICOM storage SCP: US -> staging, MRE -> MRE, MR -> MRI; jobs kept in SQLite."""
    _run(
        as_json,
        "run_serve_dicom",
        data_dir=data,
        ae_title=ae_title,
        host=host,
        port=port,
        allow=[a.strip() for a in allow.split(",") if a.strip()],
        forward=forward,
        cam=cam,
    )


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", help="HTTP port.")] = 8000,
    host: Annotated[str, typer.Option("--host", help="Address to bind (use a TLS proxy beyond loopback).")] = "127.0.0.1",
    data: DataFolder = Path("liverfib-data"),
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest accepted upload.")] = 64.0,
    cam: Annotated[bool, typer.Option("--cam/--no-cam", help="Grad-CAM overlay and pseudo-mask.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Web viewer (token from $LIVERFIB_TOKEN): upload, job list, overlays, reports, downloads."""
    _run(as_json, "run_serve", data_dir=data, host=host, port=port, max_upload_mb=max_upload_mb, cam=cam)


@app.command()
def report(
    image: Annotated[Path, typer.Argument(help="One ultrasound image: DICOM, PNG or JPEG.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html/pdf, seg/sr/sc.dcm, result.json.")],
    model: Annotated[str, typer.Option("--model", help="'default' or a staging checkpoint.")] = "default",
    cam: Annotated[bool, typer.Option("--cam/--no-cam", help="Grad-CAM overlay and pseudo-mask.")] = True,
    deidentified: Annotated[
        bool, typer.Option("--deidentified", help="Leave patient name, ID and date out of the report.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Stage one image and write an HTML/PDF report plus DICOM SEG, SR and SC."""
    _run(as_json, "run_report", image, out, model=model, cam=cam, deidentified=deidentified)


# (end of clinical commands)

def main() -> None:  # pragma: no cover - console entry
    try:
        app()
    except LiverfibError as exc:  # safety net for errors raised outside commands
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
