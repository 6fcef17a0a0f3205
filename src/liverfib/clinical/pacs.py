"""DICOM network side: a storage SCP that queues jobs, and a C-STORE sender for results.

:class:`DicomListener` (what it guarantees; see SECURITY.md):

* associations are accepted only when the called AE title is ours and the calling AE title is
  allowed; only the storage SOP classes liverfib analyses (US, MR, secondary capture) are
  negotiated, uncompressed and in every compressed transfer syntax whose decoder is installed;
* Study/Series/SOP Instance UIDs must be valid DICOM UIDs (PS3.5 9.1: digits and dots, no empty
  component, no leading zero, <= 64 characters); the file path is built from the de-identified
  UIDs, resolved, and checked to stay under the spool folder;
* every instance is de-identified before it is written (Basic Profile, burned-in text outside the
  ultrasound fan blanked); the original identifiers are kept only with ``keep_identifiers``, in
  the job database, to re-identify the results sent back to the PACS;
* an instance no route analyses (CT, a DICOM SEG, ...) is refused with status 0xC211 and a logged
  reason; nothing of it is stored. Undecodable data gets 0xC210 and a failed job with its reason.

Instances are written to ``<spool>/<study>/<series>/<sop>.dcm`` (atomically, before answering
"success"); when the association ends, jobs are created: one per ultrasound instance, one per MR
elastography study (all its series), one per other MR series.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liverfib.clinical.jobs import JobStore
from liverfib.errors import ConfigError
from liverfib.io.atomic import atomic_write
from liverfib.pipeline.clinical.routing import route_dataset

__all__ = [
    "DicomListener",
    "Destination",
    "accepted_transfer_syntaxes",
    "check_port",
    "is_dicom_uid",
    "parse_destination",
    "reidentify",
    "send_files",
]

LOG = logging.getLogger("liverfib.pacs")
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
#: Status codes (PS3.4 Annex B).
_SUCCESS, _CANNOT_UNDERSTAND, _NOT_ANALYSED, _OUT_OF_RESOURCES = 0x0000, 0xC210, 0xC211, 0xA700


def is_dicom_uid(value: str) -> bool:
    """True for a valid DICOM UID: 1-64 characters, dot-separated numbers without leading zeros."""
    return 0 < len(value) <= 64 and _UID.match(value) is not None


def check_port(port: int, what: str = "--port") -> int:
    """A TCP port 1..65535, else :class:`ConfigError`."""
    if not 0 < int(port) < 65536:
        raise ConfigError(f"{what} must be a TCP port 1..65535, got {port}")
    return int(port)


def _storage_classes() -> list[str]:
    """The SOP classes liverfib routes to an analysis (see :mod:`liverfib.pipeline.clinical.routing`)."""
    from pydicom import uid

    return [
        uid.UltrasoundImageStorage,
        uid.UltrasoundMultiFrameImageStorage,
        uid.MRImageStorage,
        uid.EnhancedMRImageStorage,
        uid.SecondaryCaptureImageStorage,
    ]


def accepted_transfer_syntaxes() -> list[str]:
    """Uncompressed syntaxes plus every compressed one whose pixel decoder is installed
    (pylibjpeg/libjpeg: JPEG baseline, extended, lossless; pyjpegls: JPEG-LS; Pillow/OpenJPEG or
    pylibjpeg-openjpeg: JPEG 2000; pydicom: RLE)."""
    from pydicom import uid
    from pydicom.pixels import get_decoder

    out = [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian]
    for ts in (
        uid.JPEGBaseline8Bit,
        uid.JPEGExtended12Bit,
        uid.JPEGLossless,
        uid.JPEGLosslessSV1,
        uid.JPEGLSLossless,
        uid.JPEGLSNearLossless,
        uid.JPEG2000Lossless,
        uid.JPEG2000,
        uid.RLELossless,
    ):
        try:
            if get_decoder(ts).is_available:
                out.append(ts)
        except (NotImplementedError, ValueError):  # no decoder registered for this syntax
            continue
    return out


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
    port = check_port(int(parts[1]), "--forward port")
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
        spool_dir: where received (de-identified) instances are written.
        ae_title: our AE title; associations calling another title are rejected.
        allowed_aets: calling AE titles that may associate (``["*"]`` accepts any).
        on_job: called with each new job id (e.g. to wake the worker).
        salt: secret for the de-identification (UIDs and pseudonyms); required.
        keep_identifiers: keep the original identifiers in ``store`` (pseudonym map) so that
            results can be re-identified when forwarded.
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
        salt: str | None = None,
        keep_identifiers: bool = False,
    ) -> None:
        from liverfib.pipeline.clinical.deidentify import load_or_create_salt

        if not allowed_aets:
            raise ConfigError(
                "no calling AE title is allowed; pass --allow AE1,AE2 (or --allow '*' to accept any sender)"
            )
        self.store = store
        self.spool_dir = Path(spool_dir)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._spool_root = self.spool_dir.resolve()
        self.results_dir = Path(results_dir) if results_dir else self.spool_dir.parent / "results"
        self.ae_title = _check_aet(ae_title, "--ae-title")
        self.allowed = [] if "*" in allowed_aets else [_check_aet(a, "--allow") for a in allowed_aets]
        self.on_job = on_job
        self.salt = salt or load_or_create_salt(self.spool_dir.parent / "deid.salt")
        self.keep_identifiers = keep_identifiers
        self._received: dict[int, list[tuple[str, Path, str]]] = {}  # assoc id -> (route, path, series)
        self._lock = threading.Lock()
        self._server: Any = None

    # ------------------------------------------------------------------------------------ server
    def start(self, host: str = "127.0.0.1", port: int = 11112) -> DicomListener:
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.ae_title)
        syntaxes = accepted_transfer_syntaxes()
        for sop_class in _storage_classes():
            ae.add_supported_context(sop_class, syntaxes)
        ae.add_supported_context(Verification)
        ae.require_calling_aet = self.allowed
        ae.require_called_aet = True  # the called AE title must be ours
        ae.maximum_pdu_size = 0
        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_RELEASED, self._on_end),
            (evt.EVT_ABORTED, self._on_end),
            (evt.EVT_CONN_CLOSE, self._on_end),
            (evt.EVT_REJECTED, self._on_rejected),
        ]
        self._server = ae.start_server((host, check_port(port)), block=False, evt_handlers=handlers)
        return self

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # ---------------------------------------------------------------------------------- handlers
    def _on_rejected(self, event: Any) -> None:
        req = event.assoc.requestor
        LOG.warning(
            "association rejected: calling AE %r called AE %r from %s",
            str(req.ae_title).strip(), str(event.assoc.acceptor.ae_title).strip(), req.address,
        )

    def _spool_path(self, study: str, series: str, sop: str) -> Path:
        """``<spool>/<study>/<series>/<sop>.dcm`` from validated UIDs, checked to stay in the spool."""
        if not all(is_dicom_uid(u) for u in (study, series, sop)):
            raise ValueError("UIDs after de-identification are not valid DICOM UIDs")
        path = (self._spool_root / study / series / f"{sop}.dcm").resolve()
        if self._spool_root not in path.parents:
            raise ValueError(f"storage path {path} escapes the spool folder")
        return path

    def _on_store(self, event: Any) -> int:
        from liverfib.pipeline.clinical.deidentify import deidentify_on_intake

        assoc_key = id(event.assoc)
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            uids = [str(ds.get(k, "") or "") for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
            bad = [u for u in uids if not is_dicom_uid(u)]
            if bad:
                raise ValueError(
                    f"StudyInstanceUID/SeriesInstanceUID/SOPInstanceUID missing or not DICOM UIDs ({bad[0][:70]!r})"
                )
            route, reason = route_dataset(ds)
            if route == "unknown":
                LOG.warning("refused %s from %s: %s", ds.get("SOPClassUID", "?"), calling, reason)
                return _NOT_ANALYSED
            mapping = deidentify_on_intake(ds, salt=self.salt)
            path = self._spool_path(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
        except Exception as exc:  # pydicom raises many types on corrupt data; the SCP must survive
            why = f"undecodable dataset from {calling}: {type(exc).__name__}: {exc}"
            LOG.warning(why)
            self._record_bad(calling, why)
            return _CANNOT_UNDERSTAND
        try:
            atomic_write(path, data=buffer.getvalue())
            if self.keep_identifiers:
                self.store.add_pseudonyms(mapping)
        except OSError as exc:
            LOG.error("cannot store an instance: %s", exc)
            return _OUT_OF_RESOURCES
        with self._lock:
            self._received.setdefault(assoc_key, []).append((route, path, str(ds.SeriesInstanceUID)))
        return _SUCCESS

    def _record_bad(self, calling: str, why: str) -> None:
        """A failed job with the reason; the data itself is not kept (it may hold identifiers)."""
        self.store.add(
            origin="dicom",
            kind="unknown",
            input_path=self.spool_dir / "_undecodable",
            out_dir=self.results_dir,
            calling_ae=calling,
            status="failed",
            error=why,
            name="undecodable instance",
        )

    def _on_end(self, event: Any) -> None:
        with self._lock:
            received = self._received.pop(id(event.assoc), [])
        if not received:
            return
        calling = str(event.assoc.requestor.ae_title).strip()
        mre_studies = {path.parent.parent for route, path, _ in received if route == "mre"}
        queued: set[Path] = set()
        for route, path, _series in received:
            study_dir = path.parent.parent
            if study_dir in mre_studies:  # every series of an MRE exam (magnitude, waves, kPa) -> one job
                route, target, name = "mre", study_dir, f"MRE study {study_dir.name[-12:]}"
            elif route == "us-staging":
                target, name = path, f"US {path.stem[-12:]}"
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


def _uid_elements(ds: Any) -> list[Any]:
    """Every non-empty UI element of ``ds``, nested sequences included."""
    out = []
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                out += _uid_elements(item)
        elif elem.VR == "UI" and elem.value:
            out.append(elem)
    return out


def reidentify(ds: Any, originals: Callable[[list[str]], dict[str, tuple[str, str]]]) -> int:
    """Put the original UIDs and patient identifiers back into a result dataset (in place) from the
    pseudonym map ``originals(values) -> {new: (attribute, original)}``; returns how many were restored."""
    elems = _uid_elements(ds)
    pid = str(ds.get("PatientID", "") or "")
    values = [str(v) for e in elems for v in (e.value if e.VM > 1 else [e.value])]
    found = originals([*values, pid, pid + "|PatientName"])
    n = 0
    for elem in elems:
        old = [found[str(v)][1] if str(v) in found else str(v) for v in (elem.value if elem.VM > 1 else [elem.value])]
        n += sum(str(v) in found for v in (elem.value if elem.VM > 1 else [elem.value]))
        elem.value = old if elem.VM > 1 else old[0]
    for key, attr in ((pid, "PatientID"), (pid + "|PatientName", "PatientName")):
        if key in found:
            setattr(ds, attr, found[key][1])
            n += 1
    fm = getattr(ds, "file_meta", None)
    if fm is not None and "SOPInstanceUID" in ds:
        fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return n


def send_files(
    files: Sequence[str | Path],
    dest: Destination,
    *,
    calling_aet: str = "LIVERFIB",
    timeout_s: float = 30.0,
    transform: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """C-STORE ``files`` to ``dest``; returns ``{"ok": bool, "files": {name: status or error}}``.

    ``transform(ds)`` changes each dataset in memory before it is sent (re-identification).
    """
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom import AE

    from liverfib.io.dicom_dataset import read_dataset

    datasets = [(Path(f), read_dataset(f)) for f in files]
    if transform is not None:
        for _path, ds in datasets:
            transform(ds)
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
