"""MR elastography commands: mre, agreement."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liverfib import api
from liverfib.cli._app import DeviceOpt, JsonFlag, _call, app


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
    device: DeviceOpt = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """Liver stiffness (kPa, area-weighted over slices) and stage from MRE exams (DICOM or NIfTI);
    a folder of several exams gives one row per exam (mre.csv with --out)."""
    _call(as_json, api.mre, exam_dir, out=out, model=model, mask=mask, cutoffs=cutoffs,
          confidence_min_pct=confidence, edge_margin_mm=edge_margin, stiffness_units=stiffness_units, device=device)


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
