"""Command-line interface: parses options and calls :mod:`liverfib.pipeline`; no logic here.

Heavy imports (torch, cv2, sklearn) happen inside commands so ``liverfib --help`` is instant.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core

from liverfib import api
from liverfib._version import __version__
from liverfib.errors import LiverfibError

# Flags take no value: show no "<bool>" type beside them in --help.
_display_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = lambda self, ctx: (  # type: ignore[method-assign]
    None if self.is_flag else _display_type(self, ctx)
)

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
    import warnings

    warnings.showwarning = _one_line_warning


_warned: set[tuple[str, str]] = set()


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    """Library warnings (sklearn, torch, ...) as one line each, once: no source lines, no stack."""
    text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    if (category.__name__, text) not in _warned:
        _warned.add((category.__name__, text))
        typer.echo(f"warning: {text} ({category.__name__})", err=True)


def _emit(result: Any, as_json: bool, text: str) -> None:
    if as_json:
        from liverfib.report.jsonio import tidy_floats

        typer.echo(json.dumps(tidy_floats(result), indent=2, default=str))
    else:
        typer.echo(text)


def _fail(exc: LiverfibError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def _call(as_json: bool, fn: Callable[..., api.Result], *args: Any, **kwargs: Any) -> None:
    """Call one :mod:`liverfib.api` function; print its text or JSON; a LiverfibError -> one line, exit 2."""
    try:
        result = fn(*args, **kwargs)
    except LiverfibError as exc:
        _fail(exc)
    _emit(result.summary, as_json, result.text)


def _inputs(paths: list[Path] | None, inputs: list[Path] | None) -> list[Path]:
    """Inputs given as arguments and/or with ``-i/--input`` (as in TotalSegmentator)."""
    given = [*(paths or []), *(inputs or [])]
    if not given:
        _fail(LiverfibError("no input given: pass files or folders as arguments or with -i/--input"))
    return given


def _renamed(new_value: Any, old_value: Any, old: str, new: str) -> Any:
    """A deprecated option spelling: still works, says once what replaces it."""
    if old_value is None:
        return new_value
    typer.echo(f"note: {old} is deprecated; use {new}", err=True)
    return old_value


InputOpt = Annotated[
    list[Path] | None, typer.Option("--input", "-i", help="Input file or folder (repeatable); same as the arguments.")
]
StrictFlag = Annotated[
    bool, typer.Option("--strict", help="Stop at the first unreadable or refused file (default: skip and list).")
]


DataDir = Annotated[Path, typer.Argument(help="Dataset root: one sub-folder per label (F0..F4).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


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
    as_json: JsonFlag = False,
) -> None:
    """METAVIR stage F0..F4 with probabilities for B-mode liver ultrasound images."""
    _call(as_json, api.predict, _inputs(paths, inputs), model=model, tta=tta, batch_size=batch_size, out=out,
          engine=engine, strict=strict)


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


# ============================== explain/segment commands ==============================
ImagePaths = Annotated[list[Path], typer.Argument(help="Image files or folders (PNG/JPEG/DICOM...).")]
ModelOpt = Annotated[str, typer.Option("--model", help="'default' (shipped) or a model bundle folder/.zip.")]


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
    as_json: JsonFlag = False,
) -> None:
    """Class-activation maps (pytorch-grad-cam): heatmap + overlay per image, CAM statistics."""
    _call(as_json, api.explain, _inputs(paths, inputs), out=out, model=model, method=method, target=target, layers=layers,
         liver_model=None if liver_model == "none" else liver_model, faithfulness=faithfulness)


@app.command("pseudo-masks")
def pseudo_masks(
    data: Annotated[Path, typer.Option("--data", help="Labelled folder (F0..F4 sub-folders).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for masks/ and manifest.csv.")],
    model: ModelOpt = "default",
    method: Annotated[str, typer.Option("--method", help="CAM method (see 'explain').")] = "gradcam",
    threshold: Annotated[
        str, typer.Option("--threshold", help="0..1 (0.5 as published), 'otsu' or 'pNN' (percentile in the fan).")
    ] = "0.5",
    as_json: JsonFlag = False,
) -> None:
    """CAM -> binary pseudo-masks (restricted to the fan) for every distinct image; copies once."""
    _call(as_json, api.pseudo_masks, data, out=out, model=model, method=method, threshold=threshold)


@app.command()
def segment(
    out: Annotated[Path, typer.Option("--out", "-o", help="us: folder for masks/overlays; mr/ct: mask.nii.gz or folder.")],
    paths: Annotated[list[Path] | None, typer.Argument(help="Images (us) or volumes/slices (mr, ct).")] = None,
    inputs: InputOpt = None,
    modality: Annotated[str, typer.Option("--modality", help="us | mr | ct; must match the DICOM Modality.")] = "us",
    model: ModelOpt = "default",
    series: Annotated[str | None, typer.Option("--series", help="mr/ct: SeriesInstanceUID to read when a folder "
                                               "holds several series (the error lists them).")] = None,
    dicom_seg: Annotated[bool, typer.Option("--dicom-seg", help="mr/ct: also write <mask>_seg.dcm, a DICOM SEG "
                                            "referencing the source series (DICOM input only).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Liver segmentation. us: <stem>_mask.png + <stem>_overlay.png, area px / mm². mr/ct: mask.nii.gz on the
    input grid + <mask>_qc.png montage (volume ml), optional DICOM SEG."""
    _call(as_json, api.segment, _inputs(paths, inputs), modality=modality, out=out, model=model, series_uid=series,
          dicom_seg=dicom_seg)


@app.command("train-seg")
def train_seg(
    task: Annotated[str, typer.Option("--task", help="Segmentation task; see 'liverfib train-seg --list'.")] = "",
    data: Annotated[Path | None, typer.Option("--data", help="Training data folder for the task.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (model bundle model/, log.csv, config.yaml).")] = None,
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
    from liverfib.models.tasks import list_tasks as registry_tasks

    if list_tasks or not task:
        for t in sorted((t for t in registry_tasks() if t.train_seg_name), key=lambda t: t.train_seg_name or ""):
            typer.echo(f"{t.train_seg_name:10s} {t.help}")
        if not list_tasks:
            _fail(LiverfibError("--task is required (choices listed above)"))
        return
    if data is None or out is None:
        _fail(LiverfibError("--data and --out are required"))
    overrides = {k: v for k, v in dict(arch=arch, epochs=epochs, batch_size=batch_size, lr=lr,
                                       img_size=img_size, seed=seed).items() if v is not None}
    _call(as_json, api.train_seg, task, data=data, out=out, config=config, **overrides,
          val_fraction=val_fraction, threads=threads)
# (end of explain/segment commands)

# ============================== mre commands ==============================
# `phantom` is a sub-app so other modalities can add theirs: `@phantom_app.command("mri")`.
phantom_app = typer.Typer(help="Write synthetic exams with ground truth (DICOM + truth.json).", no_args_is_help=True)
app.add_typer(phantom_app, name="phantom")


@phantom_app.command("mre")
def phantom_mre(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder; one sub-folder per exam.")],
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
    """SYNTHETIC MR elastography exams with truth.json (true liver mask, true stiffness field)."""
    _call(as_json, api.phantom_mre, out, n=n, seed=seed, vendor=vendor, variant=variant, fmt=fmt)


@app.command()
def mre(
    exam_dir: Annotated[Path, typer.Argument(
        help="Exam folder: MRE DICOM series (any sub-folders) or magnitude.nii.gz + stiffness.nii.gz (+ optional confidence.nii.gz); "
             "a folder of several exams measures each (one row per exam, mre.csv with --out).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for mre.json, masks and overlay_slice<k>.png.")
    ] = None,
    model: Annotated[str, typer.Option("--model", help="'default' (shipped) or a train-seg model bundle (its best/ folder).")] = "default",
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
    """Liver stiffness (kPa, area-weighted over slices) and stage from MRE exams (DICOM or NIfTI);
    a folder of several exams gives one row per exam (mre.csv with --out)."""
    _call(as_json, api.mre, exam_dir, out=out, model=model, mask=mask, cutoffs=cutoffs,
          confidence_min_pct=confidence, edge_margin_mm=edge_margin, stiffness_units=stiffness_units)


@app.command()
def agreement(
    a: Annotated[Path, typer.Option("--a", help="CSV exam,mean_stiffness_kpa[,stage][,mask] (e.g. automatic).")],
    b: Annotated[Path, typer.Option("--b", help="Same columns (e.g. manual or truth); B is the reference.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for agreement.json and bland_altman.png.")] = None,
    cutoffs: Annotated[Path | None, typer.Option("--cutoffs", help="YAML cut-off table for missing stages.")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for kappa/Dice CIs.")] = 2000,
    as_json: JsonFlag = False,
) -> None:
    """Pearson r, ICC(2,1)/(3,1), Bland-Altman, stage kappa, per-stage Dice/IoU, all with 95% CIs."""
    _call(as_json, api.agreement, a, b, out=out, cutoffs=cutoffs, n_boot=n_boot)
# (end of mre commands)

# ============================== mri commands ==============================
@phantom_app.command("mri")
def phantom_mri(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset root (LiQA: Vendor_*/NNNN-V-Sk/; CirrMRI600+: Cirrhosis_T*_3D/).")],
    layout: Annotated[str, typer.Option("--layout", help="liqa (7 phases, S1..S4) | cirrmri (T1 + T2, grades 1-3).")] = "liqa",
    n: Annotated[int, typer.Option("--n", help="Subjects (liqa: stages cycle S1..S4; cirrmri: grades cycle 1-3, >= 9).")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed; different seeds give different subjects.")] = 0,
    p_missing: Annotated[float, typer.Option("--p-missing", help="liqa: chance that each phase is absent.")] = 0.15,
    size: Annotated[int, typer.Option("--size", help="In-plane matrix (pixels).")] = 96,
    slices: Annotated[int, typer.Option("--slices", help="Number of axial slices.")] = 32,
    as_json: JsonFlag = False,
) -> None:
    """SYNTHETIC liver MRI in the LiQA layout (T1, T2, DWI_800, GED1..GED4, mask_GED4) or the CirrMRI600+ layout."""
    _call(as_json, api.phantom_mri, out, layout=layout, n_subjects=n, seed=seed, p_missing=p_missing, size=size,
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
    as_json: JsonFlag = False,
) -> None:
    """Stage MRI: LiQA P(S4), P(S2-S4), stage, phases used (any subset); CirrMRI600+ mild/moderate/severe."""
    chosen = [p.strip() for p in phases.split(",") if p.strip()] if phases else None
    _call(as_json, api.predict_mri, path, model=model, seg_model=seg_model, phases=chosen, mask=mask,
          labels_csv=labels, split=_renamed(subset, split_old, "--split", "--subset"), unit=unit, out=out)


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
    as_json: JsonFlag = False,
) -> None:
    """Train MRI staging: LiQA multi-phase (S1..S4) or CirrMRI600+ per-slice (mild/moderate/severe); held-out metrics."""
    _call(as_json, api.train_mri, data, out=out, layout=layout, sequence=sequence, labels_csv=labels,
          fusion=fusion, encoder=encoder, steps=steps, cam_weight=cam_weight,
          val_fraction=_renamed(val_fraction, val_old, "--val", "--val-fraction"), n_slices=n_slices,
          crop_size=crop_size, n_boot=n_boot, seed=seed, threads=threads)


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
    as_json: JsonFlag = False,
) -> None:
    """Deep features (ImageNet backbone, no fibrosis labels) per distinct image, for 'radiomics train --fuse'."""
    _call(as_json, api.radiomics_deep_features, images, out=out, backbone=backbone, img_size=img_size,
          keep_copies=keep_copies, strict=strict)


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


# (end of radiomics commands)

# ============================== batch command ==============================
from liverfib.pipeline.batch_tasks import BATCH_TASKS  # noqa: E402  (plain data, no heavy imports)


@app.command()
def batch(
    source: Annotated[Path, typer.Argument(help="Folder (searched recursively) or manifest .csv/.parquet with a 'path' column.")],
    task: Annotated[str, typer.Option("--task", help=" | ".join(BATCH_TASKS))],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the Parquet shards, masks and summary.json.")],
    model: Annotated[str, typer.Option("--model", help="'default' (shipped) or a model bundle path.")] = "default",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster: 'auto', host:6379 or ray://host:10001. Default: local.")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Model replicas (default: one per CPU).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Inputs per decode task and forward pass.")] = 16,
    engine: Annotated[str, typer.Option("--engine", help="auto | torch | onnx (us-staging).")] = "auto",
    shard_size: Annotated[int, typer.Option("--shard-size", help="Rows per committed Parquet shard.")] = 500,
    as_json: JsonFlag = False,
) -> None:
    """Archive-scale inference on Ray Data: one row per input, resumable, local or on a cluster."""
    _call(as_json, api.batch, source, task=task, out=out, model=model, address=address, workers=workers,
          batch_size=batch_size, engine=engine, shard_size=shard_size)


# (end of batch command)

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
    strict: StrictFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """De-identify DICOM (Basic Confidentiality Profile; burned-in text outside the US fan blanked)."""
    _call(as_json, api.deidentify, src, out, salt=salt, mask_burned_in=not keep_text, strict=strict)


@app.command("serve-dicom")
def serve_dicom(
    ae_title: Annotated[str, typer.Option("--ae-title", help="Our AE title.")] = "LIVERFIB",
    port: Annotated[int, typer.Option("--port", help="DICOM port to listen on.")] = 11112,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (default loopback; 0.0.0.0 to accept other machines).")
    ] = "127.0.0.1",
    allow: Annotated[
        str, typer.Option("--allow", help="Comma-separated calling AE titles that may send ('*' = any).")
    ] = "",
    forward: Annotated[
        str | None, typer.Option("--forward", help="Send SEG/SR/SC results to HOST:PORT:AET by C-STORE.")
    ] = None,
    data: DataFolder = Path("liverfib-data"),
    cam: Annotated[bool, typer.Option("--cam/--no-cam", help="Grad-CAM overlay and pseudo-mask.")] = True,
    keep_identifiers: Annotated[
        bool,
        typer.Option(
            "--keep-identifiers",
            help="Keep a pseudonym map (original patient IDs/UIDs) so forwarded results carry them.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """DICOM storage SCP: US -> staging, MRE -> MRE, MR -> MRI; received data is de-identified."""
    _call(
        as_json,
        api.serve_dicom,
        data_dir=data,
        ae_title=ae_title,
        host=host,
        port=port,
        allow=[a.strip() for a in allow.split(",") if a.strip()],
        forward=forward,
        cam=cam,
        keep_identifiers=keep_identifiers,
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
    _call(as_json, api.serve, data_dir=data, host=host, port=port, max_upload_mb=max_upload_mb, cam=cam)


@app.command()
def report(
    image: Annotated[Path, typer.Argument(help="One ultrasound image: DICOM, PNG or JPEG.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.html/pdf, seg/sr/sc.dcm, result.json.")],
    model: Annotated[str, typer.Option("--model", help="'default' or a staging checkpoint.")] = "default",
    cam: Annotated[bool, typer.Option("--cam/--no-cam", help="Grad-CAM overlay and pseudo-mask.")] = True,
    deidentified: Annotated[
        bool, typer.Option("--deidentified", help="Leave patient name, ID and date out of the report.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Stage one image and write an HTML/PDF report plus DICOM SEG, SR and SC."""
    _call(as_json, api.report, image, out=out, model=model, cam=cam, deidentified=deidentified)


# (end of clinical commands)

# ============================== examples in every --help ==============================
_EXAMPLES: dict[str, tuple[str, str]] = {
    "audit": ("liverfib audit data/us", "liverfib audit data/us -o runs/audit --json"),
    "split": ("liverfib split data/us -o runs/split.csv", "liverfib split data/us -o runs/folds.csv --folds 5"),
    "evaluate": ("liverfib evaluate --model default --data data/us --split runs/split.csv --subset test -o runs/eval",
                 "liverfib evaluate --predictions preds.csv -o runs/eval"),
    "predict": ("liverfib predict demo/us/F0_a1027.jpg", "liverfib predict -i demo/us -o runs/predictions.csv --json"),
    "batch": ("liverfib batch archive/ --task us-staging -o runs/batch",
              "liverfib batch manifest.csv --task ct-segment -o runs/ct --address auto --workers 8"),
    "train": ("liverfib train --data data/us --split runs/split.csv -o runs/us_model",
              "liverfib train --data data/us --split runs/split.csv -o runs/ft --epochs 5 --device cuda"),
    "models": ("liverfib models", "liverfib models '*seg*' --json"),
    "explain": ("liverfib explain demo/us -o runs/explain", "liverfib explain -i demo/us/F0_a1027.jpg -o runs/cam --method gradcam++"),
    "pseudo-masks": ("liverfib pseudo-masks --data data/us -o runs/pseudo",
                     "liverfib pseudo-masks --data data/us -o runs/pseudo --threshold otsu"),
    "segment": ("liverfib segment demo/us -o runs/us_masks", "liverfib segment -i ct.nii.gz -o runs/liver_mask.nii.gz --modality ct"),
    "train-seg": ("liverfib train-seg --list", "liverfib train-seg --task us-liver --data data/us-liver -o runs/seg"),
    "mre": ("liverfib mre runs/phantoms/exam_000 -o runs/mre", "liverfib mre exam/ --mask liver.nii.gz --json"),
    "agreement": ("liverfib agreement --a auto.csv --b manual.csv", "liverfib agreement --a auto.csv --b manual.csv -o runs/agree"),
    "mri-inspect": ("liverfib mri-inspect data/LiQA", "liverfib mri-inspect data/CirrMRI600 --labels labels.csv --json"),
    "predict-mri": ("liverfib predict-mri data/LiQA/Vendor_A/0001-A-S2", "liverfib predict-mri scan.nii.gz --model runs/mri/model --mask mask.nii.gz"),
    "train-mri": ("liverfib train-mri --data data/LiQA -o runs/mri", "liverfib train-mri --data data/CirrMRI600 -o runs/cirr --sequence T2 --labels labels.csv"),
    "deidentify": ("liverfib deidentify study/ anon/ --salt SECRET", "LIVERFIB_DEID_SALT=SECRET liverfib deidentify one.dcm anon/"),
    "serve-dicom": ("liverfib serve-dicom", "liverfib serve-dicom --port 11112 --allow SCANNER1 --data /srv/liverfib"),
    "serve": ("LIVERFIB_TOKEN=secret liverfib serve", "LIVERFIB_TOKEN=secret liverfib serve --port 8080 --no-cam"),
    "report": ("liverfib report demo/us/F0_a1027.jpg -o runs/report", "liverfib report image.dcm -o runs/report --deidentified"),
    "phantom mre": ("liverfib phantom mre -o runs/phantoms --n 5", "liverfib phantom mre -o runs/ge --vendor ge --seed 7"),
    "phantom mri": ("liverfib phantom mri -o runs/liqa_synth", "liverfib phantom mri -o runs/cirr_synth --layout cirrmri --n 9"),
    "radiomics extract": ("liverfib radiomics extract --images data/us --roi fan -o runs/features.parquet",
                          "liverfib radiomics extract --images vols/ --masks masks/ -o runs/f.parquet --config configs/radiomics_ct.yaml"),
    "radiomics deep-features": ("liverfib radiomics deep-features -i data/us -o runs/features/lite0_s123.parquet",
                                "liverfib radiomics deep-features -i data/us -o runs/f_lite1.parquet --backbone tf_efficientnet_lite1"),
    "radiomics train": ("liverfib radiomics train --features runs/features.parquet --split runs/split.csv -o runs/rad",
                        "liverfib radiomics train --features f.parquet --split folds.csv -o runs/rad --algorithm rf"),
    "radiomics evaluate": ("liverfib radiomics evaluate --model runs/rad/model.joblib --features f.parquet --split runs/split.csv",
                           "liverfib radiomics evaluate --model m.joblib --features f.parquet --split s.csv -o runs/rad_eval"),
}


def _add_examples(typer_app: typer.Typer, prefix: str = "") -> None:
    """Put two examples (from ``_EXAMPLES``) at the end of each command's --help."""
    for cmd in typer_app.registered_commands:
        name = cmd.name or (cmd.callback.__name__.rstrip("_").replace("_", "-") if cmd.callback else "")
        ex = _EXAMPLES.get(f"{prefix}{name}")
        if ex and not cmd.hidden:
            cmd.epilog = "Examples:\n\n" + "\n\n".join(f"  $ {e}" for e in ex)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _add_examples(group.typer_instance, f"{prefix}{group.name} ")


_add_examples(app)


def main() -> None:  # pragma: no cover - console entry
    try:
        app()
    except LiverfibError as exc:  # safety net for errors raised outside commands
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":  # python -m liverfib.cli
    main()
