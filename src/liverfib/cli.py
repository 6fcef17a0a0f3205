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
    as_json: JsonFlag = False,
) -> None:
    """METAVIR stage F0..F4 with probabilities for B-mode liver ultrasound images."""
    _run(as_json, "run_predict", paths, model=model, tta=tta, batch_size=batch_size, out_csv=out)


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
# (end of explain/segment commands)

# ============================== mre commands ==============================
# (end of mre commands)

# ============================== mri commands ==============================
# (end of mri commands)

# ============================== radiomics commands ==============================
# (end of radiomics commands)

# ============================== clinical commands ==============================
# (end of clinical commands)

def main() -> None:  # pragma: no cover - console entry
    try:
        app()
    except LiverfibError as exc:  # safety net for errors raised outside commands
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
