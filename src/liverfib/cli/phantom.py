"""`liverfib phantom ...`: synthetic exams with ground truth (MRE, MRI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liverfib import api
from liverfib.cli._app import JsonFlag, _call, app

# A sub-app so each modality can add its generator: `@phantom_app.command("mri")`.
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
