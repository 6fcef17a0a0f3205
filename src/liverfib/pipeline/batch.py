"""``liverfib batch``: archive-scale inference on Ray Data, on this machine or on a Ray cluster.

The flow (Ray's batch-inference pattern)::

    inputs (folder | manifest) -> sha256 -> drop inputs with an ``ok`` row in OUT (resume)
      -> ray.data.from_items -> map_batches(decode)        Ray tasks, in parallel
      -> map_batches(_Worker, ActorPoolStrategy)           model loaded once per worker
      -> driver: rows -> OUT/rows/part-<run>-<k>.parquet   one atomic write per shard

Without ``address`` Ray starts inside this process on this machine (nothing to set up); with
``address`` (``auto``, ``host:6379`` or ``ray://host:10001``) the same code runs on a cluster. Every
input gets exactly one row: ``ok`` with the task's outputs, or ``error`` with a one-line reason (a
corrupt file never stops the job). A worker killed mid-run is restarted by Ray and its batch is
retried; a killed job leaves only whole shards, and re-running the same command processes only the
inputs without an ``ok`` row. Rows of a retried input replace its older rows.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline.batch_inputs import content_sha256, list_batch_inputs
from liverfib.pipeline.batch_table import (
    KEY_COLUMNS,
    SHARD_GLOB,
    done_keys,
    drop_superseded,
    read_batch_table,
    shard_files,
    table_columns,
    write_shard,
)
from liverfib.pipeline.batch_tasks import get_task

# read_batch_table, list_batch_inputs and the column names are part of this module's interface.
__all__ = ["KEY_COLUMNS", "SHARD_GLOB", "list_batch_inputs", "read_batch_table", "run_batch"]

#: CPU share reserved for each decode task; the workers share the rest of the cluster's CPUs.
_DECODE_CPUS = 0.1


def _model_id(task_name: str, model: str) -> str:
    """``<model name>@<12 hex of the bundle's bytes>``: the ``model`` column and part of the resume key."""
    ckpt = get_task(task_name).checkpoint(model)
    if not ckpt.exists():
        raise ConfigError(f"--model {model}: {ckpt} not found; pass 'default' or a model bundle")
    return f"{model if model == 'default' else ckpt.name}@{content_sha256(ckpt)[:12]}"



# --------------------------------------------------------------------------------- Ray stages
def _one_line(exc: BaseException) -> str:
    from liverfib.errors import LiverfibError

    text = " ".join(str(exc).split())
    return text if isinstance(exc, LiverfibError) and text else f"{type(exc).__name__}: {text}"


def _decode_batch(batch: Any, task_name: str) -> Any:
    """Ray task: decode each input of a ``pandas`` batch into a pickled payload (or an error)."""
    task = get_task(task_name)
    payloads, errors = [], []
    for p in batch["path"]:
        payload, error = b"", ""
        if task.decode is not None:
            try:
                payload = pickle.dumps(task.decode(Path(p)), protocol=5)
            # one bad file must not stop an archive: any failure becomes that input's error row
            except Exception as exc:
                error = _one_line(exc)
        payloads.append(payload)
        errors.append(error)
    return batch.assign(decoded=payloads, error=errors)


def _to_builtin(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


class _Worker:
    """Ray actor: the task's model, loaded once; ``__call__`` runs one decoded batch."""

    def __init__(self, task_name: str, model: str, engine: str, threads: int, mask_dir: str) -> None:
        import torch

        torch.set_num_threads(threads)  # before loading: ONNX Runtime sessions take this thread count
        self.task = get_task(task_name)
        self.loaded = self.task.load(model, engine)
        self.mask_dir = Path(mask_dir)
        self.mask_dir.mkdir(parents=True, exist_ok=True)

    def _run(self, decoded: list[Any], paths: list[Path]) -> list[dict[str, Any]]:
        return self.task.run(self.loaded, decoded, paths, self.mask_dir)

    def __call__(self, batch: Any) -> Any:
        import pandas as pd

        status, error, result = ["error"] * len(batch), list(batch["error"]), [""] * len(batch)
        todo = [i for i, e in enumerate(error) if not e]
        decoded = [pickle.loads(batch["decoded"].iloc[i]) if self.task.decode else None for i in todo]
        paths = [Path(batch["path"].iloc[i]) for i in todo]
        outputs: list[dict[str, Any] | str]
        try:
            outputs = list(self._run(decoded, paths)) if todo else []
        except Exception:  # isolate the input(s) that failed: run this batch one input at a time
            outputs = []
            for d, p in zip(decoded, paths, strict=True):
                try:
                    outputs.append(self._run([d], [p])[0])
                except Exception as exc:
                    outputs.append(_one_line(exc))
        for i, o in zip(todo, outputs, strict=True):
            if isinstance(o, str):
                error[i] = o
            else:
                status[i], result[i] = "ok", json.dumps(o, default=_to_builtin)
        return pd.DataFrame({"path": batch["path"], "sha256": batch["sha256"], "status": status,
                             "error": error, "result": result})


def _start_ray(address: str | None) -> bool:
    """Connect to ``address`` or start Ray in this process; returns whether this call started it."""
    import logging

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline: no usage reporting
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")  # our progress bar and summary say what happened
    try:
        import ray
    except ImportError:
        raise ConfigError("liverfib batch needs Ray: pip install 'liverfib[scale]' (ray[data]==2.60.0)") from None

    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    try:
        if address is None:
            ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
        else:
            ray.init(address=address, **{k: v for k, v in kwargs.items() if k != "include_dashboard"})
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot reach a Ray cluster at --address {address}: {_one_line(exc)}") from None
    return True



# ------------------------------------------------------------------------------------ the job
def run_batch(
    source: Path,
    *,
    task: str,
    out: Path,
    model: str = "default",
    address: str | None = None,
    workers: int | None = None,
    batch_size: int = 16,
    engine: str = "auto",
    shard_size: int = 500,
) -> tuple[dict[str, Any], str]:
    """Run ``task`` on every input of ``source`` (folder or manifest) into Parquet shards under ``out``.

    ``workers``: model replicas (Ray actors), default one per CPU of the cluster; each runs
    ``max(1, CPUs // workers)`` threads. ``shard_size``: rows per committed shard (a killed job loses
    at most the rows not yet in a shard). Returns ``(summary, text)``; ``out/summary.json`` holds the
    summary: total, ok, error, skipped, wall seconds, items/s, workers, Ray address.
    """
    from liverfib.inference.onnx_engine import resolve_engine
    from liverfib.io.jsonio import write_json

    t0 = time.perf_counter()
    spec = get_task(task)
    _check_counts(batch_size=batch_size, workers=workers, shard_size=shard_size)
    engine = resolve_engine(engine)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out must be a folder (Parquet shards go there), found a file")
    model_id = _model_id(task, model)
    paths, carried = list_batch_inputs(source, spec.inputs)
    todo, replaced = _todo(paths, out, task, model_id)
    counts = {"ok": 0, "error": 0}
    n_workers, address_used, shards, errors = 0, address or "local", [], []
    if todo:
        n_workers, address_used, shards, errors, counts = _run_ray(
            todo, task=task, model=model, model_id=model_id, engine=engine, out=out, address=address,
            workers=workers, batch_size=batch_size, shard_size=shard_size, carried=carried)
        replaced += drop_superseded(out)
    wall = time.perf_counter() - t0
    summary: dict[str, Any] = {
        "task": task, "model": model_id, "engine": engine if task == "us-staging" else None,
        "total": len(paths), "ok": counts["ok"], "error": counts["error"], "skipped": len(paths) - len(todo),
        "wall_seconds": round(wall, 3), "items_per_second": round(len(todo) / wall, 3) if todo else 0.0,
        "workers": n_workers, "ray_address": address_used, "shards_written": len(shards),
        "older_rows_replaced": replaced, "out": str(out), "errors": errors[:20],
    }
    write_json(summary, out / "summary.json")
    return summary, _text(summary, errors, wall=wall, ran=bool(todo), out=out)


def _check_counts(**counts: int | None) -> None:
    for name, value in counts.items():
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def _todo(paths: list[Path], out: Path, task: str, model_id: str) -> tuple[list[tuple[str, str]], int]:
    """``(path, sha256)`` of the inputs without an ``ok`` row in ``out``, and how many older rows were removed."""
    with ThreadPoolExecutor(max_workers=8) as pool:  # hashing is I/O bound; hashlib releases the GIL
        shas = list(pool.map(content_sha256, paths))
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / "rows").glob(".part-*.tmp"):  # a shard being written when a job was killed
        stale.unlink()
    replaced = drop_superseded(out)  # rows left over by a killed run
    done = done_keys(out)
    todo = [(str(p), s) for p, s in zip(paths, shas, strict=True) if (str(p), s, task, model_id) not in done]
    return todo, replaced


def _text(summary: dict[str, Any], errors: list[dict[str, str]], *, wall: float, ran: bool, out: Path) -> str:
    s = summary
    lines = [f"batch {s['task']} ({s['model']}): {s['total']} inputs, {s['ok']} ok, {s['error']} error, "
             f"{s['skipped']} already done; {wall:.1f} s"
             + (f", {s['items_per_second']:.2f} items/s on {s['workers']} workers ({s['ray_address']})" if ran else "")]
    lines += [f"  error: {e['path']}: {e['error']}" for e in errors[:5]]
    lines.append(f"results: {out / 'rows'}/ ({len(shard_files(out))} shards); summary: {out / 'summary.json'}")
    return "\n".join(lines)


def _run_ray(
    todo: list[tuple[str, str]], *, task: str, model: str, model_id: str, engine: str, out: Path,
    address: str | None, workers: int | None, batch_size: int, shard_size: int, carried: dict[str, dict[str, Any]],
) -> tuple[int, str, list[Path], list[dict[str, str]], dict[str, int]]:
    """The Ray part of :func:`run_batch`: returns workers, address, new shards, errors, counts."""
    started = _start_ray(address)
    import ray
    # Ray prints worker failures and retries from a background thread to stdout; they are
    # diagnostics, so they go to stderr and stdout stays the command's output (--json).
    with contextlib.redirect_stdout(sys.stderr):
        try:
            return _stream(todo, task=task, model=model, model_id=model_id, engine=engine, out=out,
                           address=address, workers=workers, batch_size=batch_size, shard_size=shard_size,
                           carried=carried)
        finally:
            if started:
                ray.shutdown()



def _stream(
    todo: list[tuple[str, str]], *, task: str, model: str, model_id: str, engine: str, out: Path,
    address: str | None, workers: int | None, batch_size: int, shard_size: int, carried: dict[str, dict[str, Any]],
) -> tuple[int, str, list[Path], list[dict[str, str]], dict[str, int]]:
    """Build the Ray Data pipeline and commit its rows shard by shard."""
    import ray

    ds, n_workers = _dataset(todo, task=task, model=model, engine=engine, out=out, workers=workers,
                             batch_size=batch_size)
    shards, errors, counts = _commit_rows(ds, len(todo), task=task, model_id=model_id, out=out,
                                          shard_size=shard_size, carried=carried)
    used = address or "local"
    if address is not None:
        used = f"{address} ({ray.get_runtime_context().gcs_address})"
    return n_workers, used, shards, errors, counts


def _dataset(todo: list[tuple[str, str]], *, task: str, model: str, engine: str, out: Path, workers: int | None,
             batch_size: int) -> tuple[Any, int]:
    """The Ray Data pipeline (decode tasks, then model workers) and its number of workers."""
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # ours below counts rows committed to shards
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    cpus = float(ray.cluster_resources().get("CPU", 1))
    n_workers = workers or max(1, int(cpus))
    blocks = max(math.ceil(len(todo) / (4 * batch_size)), min(math.ceil(len(todo) / batch_size), 4 * n_workers))
    n_workers = min(n_workers, blocks)  # never more replicas than blocks to feed them
    actor_cpus = max(0.01, (cpus * (1 - _DECODE_CPUS)) / n_workers)
    threads = max(1, int(cpus // n_workers))
    mask_dir = out / "masks" / task
    ds = ray.data.from_items([{"path": p, "sha256": s} for p, s in todo], override_num_blocks=blocks)
    ds = ds.map_batches(_decode_batch, fn_kwargs={"task_name": task}, batch_size=batch_size,
                        batch_format="pandas", num_cpus=_DECODE_CPUS)
    ds = ds.map_batches(
        _Worker, fn_constructor_kwargs={"task_name": task, "model": model, "engine": engine,
                                        "threads": threads, "mask_dir": str(mask_dir)},
        batch_size=batch_size, batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=n_workers),
        num_cpus=actor_cpus)  # Ray Data restarts a dead actor and retries its batch (max_restarts=-1)
    return ds, n_workers


def _commit_rows(ds: Any, n_todo: int, *, task: str, model_id: str, out: Path, shard_size: int,
                 carried: dict[str, dict[str, Any]]) -> tuple[list[Path], list[dict[str, str]], dict[str, int]]:
    """Rows of ``ds`` into shards of ``shard_size`` rows, each committed once full; shards, errors, counts."""
    from tqdm import tqdm

    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:6]  # sorts by start
    columns = table_columns(task, carried)
    types = {"path": "string", "sha256": "string", "task": "string", "model": "string", "status": "string",
             "error": "string", **get_task(task).columns}
    shards: list[Path] = []
    errors: list[dict[str, str]] = []
    counts = {"ok": 0, "error": 0}
    pending: list[dict[str, Any]] = []

    def commit(rows: list[dict[str, Any]]) -> None:
        extra = [k for r in rows for k in r if k not in columns]
        columns.extend(dict.fromkeys(extra))
        shards.append(write_shard(rows, out / "rows" / f"part-{run_id}-{len(shards):05d}.parquet", columns, types))

    bar = tqdm(total=n_todo, desc=f"batch {task}", unit="item", smoothing=0.1, disable=None)
    for block in ds.iter_batches(batch_size=None, batch_format="pandas"):
        for rec in block.to_dict("records"):
            row = {"path": rec["path"], "sha256": rec["sha256"], "task": task, "model": model_id,
                   "status": rec["status"], "error": rec["error"], **carried.get(rec["path"], {})}
            row.update(json.loads(rec["result"]) if rec["result"] else {})
            counts[rec["status"]] += 1
            if rec["status"] == "error":
                errors.append({"path": rec["path"], "error": rec["error"]})
            pending.append(row)
        bar.update(len(block))
        while len(pending) >= shard_size:
            commit(pending[:shard_size])
            pending = pending[shard_size:]
    if pending:
        commit(pending)
    bar.close()
    return shards, errors, counts
