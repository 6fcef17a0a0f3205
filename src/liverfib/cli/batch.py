"""`liverfib batch`: archive-scale inference on Ray Data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liverfib import api
from liverfib.cli._app import DeviceOpt, JsonFlag, _call, app
from liverfib.pipeline.batch_tasks import BATCH_TASKS  # plain data, no heavy imports


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
    device: DeviceOpt = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """Archive-scale inference on Ray Data: one row per input, resumable, local or on a cluster."""
    _call(as_json, api.batch, source, task=task, out=out, model=model, address=address, workers=workers,
          batch_size=batch_size, engine=engine, shard_size=shard_size, device=device)
