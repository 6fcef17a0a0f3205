"""Liver segmentation commands: segment, train-seg."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liverfib import api
from liverfib.cli._app import DeviceOpt, InputOpt, JsonFlag, ModelOpt, _call, _fail, _inputs, app
from liverfib.errors import LiverfibError


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
    device: DeviceOpt = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """Liver segmentation. us: <stem>_mask.png + <stem>_overlay.png, area px / mm². mr/ct: mask.nii.gz on the
    input grid + <mask>_qc.png montage (volume ml), optional DICOM SEG."""
    _call(as_json, api.segment, _inputs(paths, inputs), modality=modality, out=out, model=model, series_uid=series,
          dicom_seg=dicom_seg, device=device)


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
    device: DeviceOpt = "cpu",
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
          val_fraction=val_fraction, threads=threads, device=device)
