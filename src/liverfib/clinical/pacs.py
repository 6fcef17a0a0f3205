"""DICOM network side: a storage SCP that queues jobs, and a C-STORE sender for results.

:class:`DicomListener` accepts associations only from the allowed calling AE titles, writes every
received instance to ``<spool>/<study>/<series>/<sop>.dcm`` (atomically, before answering
"success"), and when the association ends creates jobs: one per ultrasound instance, one per MR
elastography study (all its series), one per other MR series. Undecodable data is answered with a failure status and recorded as a failed job with its
reason; the server keeps running.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liverfib.clinical.jobs import JobStore
from liverfib.clinical.routing import route_dataset
from liverfib.errors import ConfigError
from liverfib.io.dicom_dataset import read_dataset

__all__ = ["DicomListener", "Destination", "parse_destination", "send_files"]

LOG = logging.getLogger("liverfib.pacs")
_UID = re.compile(r"^[0-9.]{1,64}$")
#: Status codes (PS3.4 Annex B).
_SUCCESS, _CANNOT_UNDERSTAND, _OUT_OF_RESOURCES = 0x0000, 0xC210, 0xA700


@dataclass(frozen=True)
class Destination:
    """A DICOM node results are sent to."""

    host: str
    port: int
    ae_title: str


def parse_destination(text: str) -> Destination:
    """``HOST:PORT:AET`` -> :class:`Destination`."""
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].strip():
        raise ConfigError(f"--forward expects HOST:PORT:AET (e.g. 127.0.0.1:4242:ORTHANC), got {text!r}")
    port = int(parts[1])
    if not 0 < port < 65536:
        raise ConfigError(f"--forward port must be 1..65535, got {port}")
    return Destination(parts[0], port, _check_aet(parts[2], "--forward AE title"))


def _check_aet(aet: str, what: str) -> str:
    aet = aet.strip()
    if not 0 < len(aet) <= 16 or not aet.isascii() or "\\" in aet:
        raise ConfigError(f"{what} must be 1-16 ASCII characters without backslash, got {aet!r}")
    return aet


class DicomListener:
    """A pynetdicom storage SCP that turns received studies into jobs.

    Args:
        store: where jobs are recorded.
        spool_dir: where received instances are written.
        ae_title: our AE title.
        allowed_aets: calling AE titles that may associate (``["*"]`` accepts any).
        on_job: called with each new job id (e.g. to wake the worker).
    """

    def __init__(
        self,
        store: JobStore,
        spool_dir: str | Path,
        *,
        ae_title: str = "LIVERFIB",
        allowed_aets: Sequence[str] = (),
        on_job: Callable[[str], None] | None = None,
        results_dir: str | Path | None = None,
    ) -> None:
        if not allowed_aets:
            raise ConfigError(
                "no calling AE title is allowed; pass --allow AE1,AE2 (or --allow '*' to accept any sender)"
            )
        self.store = store
        self.spool_dir = Path(spool_dir)
        self.results_dir = Path(results_dir) if results_dir else self.spool_dir.parent / "results"
        self.ae_title = _check_aet(ae_title, "--ae-title")
        self.allowed = [] if "*" in allowed_aets else [_check_aet(a, "--allow") for a in allowed_aets]
        self.on_job = on_job
        self._received: dict[int, list[tuple[str, Path, str]]] = {}  # assoc id -> (route, path, series)
        self._lock = threading.Lock()
        self._server: Any = None

    # ------------------------------------------------------------------------------------ server
    def start(self, host: str = "127.0.0.1", port: int = 11112) -> DicomListener:
        from pynetdicom import AE, StoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.ae_title)
        ae.supported_contexts = StoragePresentationContexts
        ae.add_supported_context(Verification)
        ae.require_calling_aet = self.allowed
        ae.maximum_pdu_size = 0
        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_RELEASED, self._on_end),
            (evt.EVT_ABORTED, self._on_end),
            (evt.EVT_CONN_CLOSE, self._on_end),
        ]
        self._server = ae.start_server((host, port), block=False, evt_handlers=handlers)
        return self

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # ---------------------------------------------------------------------------------- handlers
    def _on_store(self, event: Any) -> int:
        assoc_key = id(event.assoc)
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            study, series, sop = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
            if not all(_UID.match(u) for u in (study, series, sop)):
                raise ValueError("StudyInstanceUID/SeriesInstanceUID/SOPInstanceUID missing or not UIDs")
            route, reason = route_dataset(ds)
        except Exception as exc:  # pydicom raises many types on corrupt data; the SCP must survive
            why = f"undecodable dataset from {calling}: {type(exc).__name__}: {exc}"
            LOG.warning(why)
            self._record_bad(event, calling, why)
            return _CANNOT_UNDERSTAND
        path = self.spool_dir / study / series / f"{sop}.dcm"
        try:
            _write_atomic(path, event.encoded_dataset(include_meta=True))
        except OSError as exc:
            LOG.error("cannot store %s: %s", sop, exc)
            return _OUT_OF_RESOURCES
        with self._lock:
            self._received.setdefault(assoc_key, []).append((route, path, series))
        if route == "unknown":
            LOG.info("%s stored but not analysed: %s", sop, reason)
        return _SUCCESS

    def _record_bad(self, event: Any, calling: str, why: str) -> None:
        bad_dir = self.spool_dir / "_undecodable"
        try:
            data = event.request.DataSet.getvalue() if event.request.DataSet is not None else b""
        except Exception:  # the raw stream may be gone; the reason is still recorded
            data = b""
        job = self.store.add(
            origin="dicom",
            kind="unknown",
            input_path=bad_dir,
            out_dir=self.results_dir,
            calling_ae=calling,
            status="failed",
            error=why,
            name="undecodable instance",
        )
        if data:
            _write_atomic(bad_dir / f"{job.id}.raw", data)

    def _on_end(self, event: Any) -> None:
        with self._lock:
            received = self._received.pop(id(event.assoc), [])
        if not received:
            return
        calling = str(event.assoc.requestor.ae_title).strip()
        mre_studies = {path.parent.parent for route, path, _ in received if route == "mre"}
        queued: set[Path] = set()
        for route, path, _series in received:
            if route == "unknown":
                continue
            study_dir = path.parent.parent
            if study_dir in mre_studies:  # every series of an MRE exam (magnitude, waves, kPa) -> one job
                route, target, name = "mre", study_dir, f"MRE study {study_dir.name[-12:]}"
            elif route == "us-staging":
                target, name = path, path.name
            else:
                target, name = path.parent, f"MR series {path.parent.name[-12:]}"
            if target in queued:
                continue
            queued.add(target)
            job = self.store.add(
                origin="dicom",
                kind=route,
                input_path=target,
                out_dir=self.results_dir,
                calling_ae=calling,
                name=name,
            )
            if self.on_job is not None:
                self.on_job(job.id)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def send_files(
    files: Sequence[str | Path], dest: Destination, *, calling_aet: str = "LIVERFIB", timeout_s: float = 30.0
) -> dict[str, Any]:
    """C-STORE ``files`` to ``dest``; returns ``{"ok": bool, "files": {name: status or error}}``."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom import AE

    datasets = [(Path(f), read_dataset(f)) for f in files]
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    for sop_class in sorted({str(ds.SOPClassUID) for _, ds in datasets}):
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    out: dict[str, Any] = {"destination": f"{dest.ae_title}@{dest.host}:{dest.port}", "files": {}}
    assoc = ae.associate(dest.host, dest.port, ae_title=dest.ae_title)
    if not assoc.is_established:
        out["ok"] = False
        out["error"] = "association rejected or destination unreachable"
        return out
    try:
        for path, ds in datasets:
            status = assoc.send_c_store(ds)
            code = int(status.Status) if status is not None and "Status" in status else None
            out["files"][path.name] = f"0x{code:04X}" if code is not None else "no response"
    finally:
        assoc.release()
    out["ok"] = all(v in ("0x0000", "0xB000", "0xB007", "0xB006") for v in out["files"].values())
    return out
