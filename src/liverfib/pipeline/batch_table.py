"""The result table of ``liverfib batch``: Parquet shards under ``OUT/rows/``, one row per input.

Shards are written atomically (a reader never sees half a file) and named by the time their run
started, so the newest row of an input wins when a run is repeated.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from liverfib.pipeline.batch_tasks import get_task

__all__ = ["BASE_COLUMNS", "KEY_COLUMNS", "SHARD_GLOB", "done_keys", "drop_superseded", "read_batch_table",
           "shard_files", "table_columns", "write_shard"]

#: The columns that identify one result: an input (path + content), a task and a model (name + weights).
KEY_COLUMNS = ("path", "sha256", "task", "model")
BASE_COLUMNS = (*KEY_COLUMNS, "status", "error")
#: Shards live in ``OUT/rows/`` (``pandas.read_parquet(OUT / "rows")`` reads them all).
SHARD_GLOB = "part-*.parquet"


def shard_files(out: Path) -> list[Path]:
    """The shards under ``out``, oldest run first."""
    return sorted((out / "rows").glob(SHARD_GLOB))


def read_batch_table(out: Path) -> Any:
    """Every shard under ``out`` as one ``pyarrow.Table`` (column types promoted across shards)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(f) for f in shard_files(Path(out))]
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def done_keys(out: Path) -> set[tuple[str, ...]]:
    """Keys of the ``ok`` rows already in ``out``."""
    import pyarrow.parquet as pq

    done: set[tuple[str, ...]] = set()
    for f in shard_files(out):
        t = pq.read_table(f, columns=[*KEY_COLUMNS, "status"]).to_pylist()
        done.update(tuple(r[k] for k in KEY_COLUMNS) for r in t if r["status"] == "ok")
    return done


def write_shard(rows: list[dict[str, Any]], path: Path, columns: list[str], types: dict[str, str]) -> Path:
    """One shard, atomically (a reader never sees half a file); ``types``: Arrow types of known columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from liverfib.io.atomic import atomic_write

    arrays = [pa.array([r.get(c) for r in rows], type=pa.type_for_alias(types[c]) if c in types else None)
              for c in columns]
    table = pa.Table.from_arrays(arrays, names=columns)
    with atomic_write(path, mode="wb") as fh:
        pq.write_table(table, fh)
    return path


def drop_superseded(out: Path) -> int:
    """Keep one row per (path, task, model): the newest (shards sort by the time their run started).

    Older rows of an input run again (an error retried, a changed file, or rows of a killed run
    whose clean-up never ran) are removed; their shards are rewritten atomically. Returns the count.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from liverfib.io.atomic import atomic_write

    shards = shard_files(out)
    keys = [list(zip(*(pq.read_table(f, columns=["path", "task", "model"]).column(c).to_pylist()
                       for c in ("path", "task", "model")), strict=True)) for f in shards]
    newest = {k: (i, j) for i, ks in enumerate(keys) for j, k in enumerate(ks)}
    dropped = 0
    for i, (f, ks) in enumerate(zip(shards, keys, strict=True)):
        keep = [newest[k] == (i, j) for j, k in enumerate(ks)]
        if all(keep):
            continue
        dropped += len(keep) - sum(keep)
        if any(keep):
            with atomic_write(f, mode="wb") as fh:
                pq.write_table(pq.read_table(f).filter(pa.array(keep)), fh)
        else:
            f.unlink()
    return dropped



def table_columns(task: str, carried: dict[str, dict[str, Any]]) -> list[str]:
    """Base columns, the task's outputs, then the manifest's carried columns."""
    names: Iterable[str] = next(iter(carried.values()), {}).keys()
    return list(dict.fromkeys([*BASE_COLUMNS, *get_task(task).columns, *names]))
