"""SQLite job store shared by the DICOM listener, the web app and the worker.

A job is one analysis of one input (a DICOM instance, a DICOM series folder or an uploaded image).
Its row is written before the sender is told "stored", so nothing received is lost on a crash:
on start, :meth:`JobStore.requeue_interrupted` puts jobs that were running back in the queue.

Status: ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``unsupported``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FINAL_STATES", "Job", "JobStore", "JobWorker"]

FINAL_STATES = ("done", "failed", "unsupported")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    origin TEXT NOT NULL,          -- 'dicom' | 'web' | 'cli'
    calling_ae TEXT,
    kind TEXT NOT NULL,            -- 'us-staging' | 'mre' | 'mri' | 'unknown'
    status TEXT NOT NULL,
    input_path TEXT NOT NULL,
    out_dir TEXT NOT NULL,
    name TEXT,
    result TEXT,                   -- JSON summary when done
    error TEXT,                    -- reason when failed / unsupported
    forwarded TEXT                 -- JSON: C-STORE results per file
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created);
CREATE TABLE IF NOT EXISTS pseudonyms (  -- only with --keep-identifiers: new value -> original
    new TEXT PRIMARY KEY,
    attribute TEXT NOT NULL,
    original TEXT NOT NULL
);
"""
#: Result keys that may carry identifiers or server paths; the public view leaves them out.
_PRIVATE_STUDY_KEYS = ("PatientName", "PatientID", "StudyDate")
#: The folders of an absolute path (``/srv/data/uploads/ab12/``); the public view keeps the file name.
_FOLDERS = re.compile(r"(?<![\w.])/(?:[^/\s'\"]+/)+")


def _without_paths(text: str | None) -> str | None:
    return _FOLDERS.sub("", text) if text else text


@dataclass(frozen=True)
class Job:
    """One row of the job table."""

    id: str
    created: float
    updated: float
    origin: str
    calling_ae: str | None
    kind: str
    status: str
    input_path: str
    out_dir: str
    name: str | None
    result: dict[str, Any] | None
    error: str | None
    forwarded: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def public_dict(self) -> dict[str, Any]:
        """What the web API shows: no server paths, no patient name / ID / dates (even pseudonyms
        stay server-side), no forwarding host."""
        d = {k: v for k, v in self.as_dict().items() if k not in ("input_path", "out_dir")}
        d["error"] = _without_paths(self.error)
        if self.result is not None:
            result = dict(self.result)
            result["notes"] = [_without_paths(str(n)) for n in result.get("notes") or []]
            study = result.get("study")
            if isinstance(study, dict):
                result["study"] = {k: v for k, v in study.items() if k not in _PRIVATE_STUDY_KEYS}
            result.pop("forwarded", None)
            d["result"] = result
        if self.forwarded is not None:
            d["forwarded"] = {"ok": bool(self.forwarded.get("ok"))}
        return d


class JobStore:
    """Jobs in one SQLite file (WAL mode; one connection per call, safe across threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One connection per thread, kept open (closing the last connection of a WAL database
        checkpoints it, which cost ~25 ms per call)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            con.row_factory = sqlite3.Row
            # WAL + NORMAL: a commit survives a crash of this process (what "nothing lost on
            # restart" needs) without one fsync per job; only a power cut may lose the last commits.
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
        yield con

    def add(
        self,
        *,
        origin: str,
        kind: str,
        input_path: str | Path,
        out_dir: str | Path,
        name: str | None = None,
        calling_ae: str | None = None,
        status: str = "queued",
        error: str | None = None,
        job_id: str | None = None,
    ) -> Job:
        """Insert a job (``queued`` unless told otherwise) and return it."""
        now = time.time()
        jid = job_id or uuid.uuid4().hex[:16]
        with self._connect() as con:
            con.execute(
                "INSERT INTO jobs (id, created, updated, origin, calling_ae, kind, status, input_path,"
                " out_dir, name, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (jid, now, now, origin, calling_ae, kind, status, str(input_path), str(out_dir), name, error),
            )
        job = self.get(jid)
        assert job is not None  # just inserted
        return job

    def get(self, job_id: str) -> Job | None:
        with self._connect() as con:
            row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list(self, *, limit: int = 200, status: str | None = None) -> list[Job]:
        """Newest first."""
        sql, args = "SELECT * FROM jobs", []
        if status:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY created DESC, rowid DESC LIMIT ?"
        args.append(int(limit))
        with self._connect() as con:
            return [_job(r) for r in con.execute(sql, args).fetchall()]

    def counts(self) -> dict[str, int]:
        with self._connect() as con:
            rows = con.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def claim_next(self) -> Job | None:
        """Atomically move the oldest queued job to ``running`` and return it (None if none)."""
        with self._connect() as con:
            row = con.execute(
                "UPDATE jobs SET status = 'running', updated = ? WHERE id = ("
                "SELECT id FROM jobs WHERE status = 'queued' ORDER BY created, rowid LIMIT 1"
                ") AND status = 'queued' RETURNING *",
                (time.time(),),
            ).fetchone()
        return _job(row) if row else None

    def finish(
        self,
        job_id: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        if status not in FINAL_STATES:
            raise ValueError(f"final status must be one of {FINAL_STATES}, got {status!r}")
        with self._connect() as con:
            con.execute(
                "UPDATE jobs SET status = ?, updated = ?, result = ?, error = ? WHERE id = ?",
                (status, time.time(), json.dumps(result) if result is not None else None, error, job_id),
            )

    def set_forwarded(self, job_id: str, forwarded: dict[str, Any]) -> None:
        with self._connect() as con:
            con.execute(
                "UPDATE jobs SET forwarded = ?, updated = ? WHERE id = ?",
                (json.dumps(forwarded), time.time(), job_id),
            )

    def add_pseudonyms(self, mapping: dict[str, tuple[str, str]]) -> None:
        """Keep ``{new value: (attribute, original value)}`` (the operator asked to keep identifiers)."""
        with self._connect() as con:
            con.executemany(
                "INSERT OR IGNORE INTO pseudonyms (new, attribute, original) VALUES (?, ?, ?)",
                [(new, attr, old) for new, (attr, old) in mapping.items()],
            )

    def pseudonyms(self, values: list[str]) -> dict[str, tuple[str, str]]:
        """The originals of ``values`` that have a pseudonym entry."""
        if not values:
            return {}
        with self._connect() as con:
            rows = con.execute(
                f"SELECT new, attribute, original FROM pseudonyms WHERE new IN ({','.join('?' * len(values))})",
                values,
            ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def count_queued(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0])

    def requeue_interrupted(self) -> int:
        """Put jobs left ``running`` by a crash back in the queue; returns how many."""
        with self._connect() as con:
            cur = con.execute("UPDATE jobs SET status = 'queued', updated = ? WHERE status = 'running'", (time.time(),))
            return int(cur.rowcount)


def _job(row: sqlite3.Row) -> Job:
    d = dict(row)
    for key in ("result", "forwarded"):
        d[key] = json.loads(d[key]) if d[key] else None
    return Job(**d)


class JobWorker:
    """A background thread that runs queued jobs one at a time with ``process(job)``.

    ``process`` returns ``(status, result, error)``; an exception it raises marks the job
    ``failed`` with the exception's message (the worker itself never dies on a bad job).
    """

    def __init__(
        self,
        store: JobStore,
        process: Callable[[Job], tuple[str, dict[str, Any] | None, str | None]],
        *,
        poll_s: float = 0.5,
    ) -> None:
        self.store = store
        self.process = process
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> JobWorker:
        self.store.requeue_interrupted()
        self._thread = threading.Thread(target=self._loop, name="liverfib-jobs", daemon=True)
        self._thread.start()
        return self

    def notify(self) -> None:
        """Wake the worker now (a job was added)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.store.claim_next()
            if job is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()
                continue
            try:
                status, result, error = self.process(job)
            except Exception as exc:  # a bad job must not kill the worker; its reason is kept
                status, result, error = "failed", None, f"{type(exc).__name__}: {exc}"
            self.store.finish(job.id, status, result=result, error=error)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until no job is queued or running (tests, CLI); True if reached in time."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            c = self.store.counts()
            if not c.get("queued") and not c.get("running"):
                return True
            time.sleep(0.05)
        return False
