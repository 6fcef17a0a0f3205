"""Uploads: stream to disk, recognise by content, validate, unpack zips and queue the jobs."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from liverfib.clinical.jobs import JobStore
from liverfib.clinical.web.archive import safe_extract_zip
from liverfib.clinical.web.config import UploadRejected, WebConfig
from liverfib.clinical.web.validation import validate_member
from liverfib.clinical.web.volume import sniff_nifti
from liverfib.io.atomic import atomic_write

__all__ = ["queue_upload", "sniff_upload"]


def sniff_upload(head: bytes) -> str | None:
    """``"dicom"``, ``"zip"``, ``"nii"``/``"nii.gz"`` (NIfTI volume), a raster format name (``"png"``,
    ...) or ``None`` from the first bytes."""
    from liverfib.io.raster import sniff_format

    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    return sniff_nifti(head) or sniff_format(head)


def _stream_to_disk(src: BinaryIO, path: Path, max_bytes: int) -> int:
    """Copy ``src`` to ``path`` in 1 MiB chunks, stopping with 413 past ``max_bytes``; returns the size.

    Written atomically: a refused or broken upload leaves no partial file under the final name.
    """
    size = 0
    with atomic_write(path, "wb") as out:
        while chunk := src.read(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise UploadRejected(413, f"upload larger than {max_bytes} bytes; refused")
            out.write(chunk)
    return size


def _stored_name(kind: str | None) -> str:
    """File name of an upload of ``kind`` in its folder (``None``: unrecognised, removed after the 415)."""
    if kind is None:
        return "upload.part"
    if kind == "zip":
        return "upload.zip"
    return f"input.{'dcm' if kind == 'dicom' else kind}"


def queue_upload(
    src: BinaryIO,
    filename: str,
    store: JobStore,
    cfg: WebConfig,
    upload_root: Path,
    results_root: Path,
    salt: str,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Stream one upload to disk, sniff, validate, de-identify and queue it; returns (jobs, skipped)."""
    display = re.sub(r"[^A-Za-z0-9._ -]", "_", Path(filename.replace("\\", "/")).name)[:80] or "upload"
    folder = upload_root / uuid.uuid4().hex
    try:
        src.seek(0)
        kind = sniff_upload(src.read(512))
        src.seek(0)
        raw = folder / _stored_name(kind)
        if _stream_to_disk(src, raw, cfg.max_upload_bytes) == 0:
            raise UploadRejected(400, "empty upload")
        if kind is None:
            raise UploadRejected(
                415, "unsupported content: expected DICOM, PNG, JPEG, BMP, TIFF, a NIfTI volume or a zip of them"
            )
        if kind == "zip":
            with raw.open("rb") as fh:
                files = safe_extract_zip(fh, folder / "zip", cfg)
            raw.unlink()
            members = [(f, str(f.relative_to(folder / "zip"))) for f in files]
        else:
            members = [(raw, display)]
        planned, skipped = _validate_members(members, kind == "zip", cfg, salt)
        return _enqueue(_group_series(planned), store, cfg, results_root), skipped
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _validate_members(
    members: list[tuple[Path, str]], from_zip: bool, cfg: WebConfig, salt: str
) -> tuple[list[tuple[str, Path, str, str]], list[dict[str, str]]]:
    """Validate each ``(path, name)``; returns ``(route, path, name, series)`` per image, and the skipped.

    A zip's bad members are skipped with their reason (and deleted); a single bad file is refused.
    """
    skipped: list[dict[str, str]] = []
    planned: list[tuple[str, Path, str, str]] = []
    for path, name in members:
        with path.open("rb") as fh:
            member_kind = sniff_upload(fh.read(512))
        if member_kind is None or member_kind == "zip":
            skipped.append({"name": name, "reason": "not an image (nested zips are not opened)"})
            path.unlink()
            continue
        try:
            route, series = validate_member(path, member_kind, cfg, salt)
        except UploadRejected as exc:
            if not from_zip:
                raise
            skipped.append({"name": name, "reason": exc.reason})
            path.unlink()
            continue
        planned.append((route, path, name, series or name))
    if not planned:
        what = "; ".join(f"{s['name']}: {s['reason']}" for s in skipped[:5])
        raise UploadRejected(400, f"nothing to analyse in the upload ({what})")
    return planned, skipped


def _group_series(planned: list[tuple[str, Path, str, str]]) -> list[tuple[str, Path, str]]:
    """One job per image (ultrasound), per series (MRI), or per exam (all MR series of an MRE upload)."""
    mre = any(route == "mre" for route, *_ in planned)
    work: list[tuple[str, Path, str]] = []
    queued: set[str] = set()
    for route, path, name, series in planned:
        target = path
        if mre and route in ("mre", "mri"):  # an MRE exam: all its MR series form one job
            route, target, name, series = "mre", path.parents[len(Path(name).parts) - 1], "MRE exam", "mre-exam"
        elif route == "mri":
            target = path.parent
        if route != "us-staging":
            if series in queued:
                continue
            queued.add(series)
        work.append((route, target, name))
    return work


def _enqueue(
    work: list[tuple[str, Path, str]], store: JobStore, cfg: WebConfig, results_root: Path
) -> list[dict[str, Any]]:
    """Queue the jobs (429 when they would overflow the queue); returns their public summaries."""
    if store.count_queued() + len(work) > cfg.max_queued_jobs:
        raise UploadRejected(429, f"the job queue is full ({cfg.max_queued_jobs} waiting); try again later")
    jobs: list[dict[str, Any]] = []
    for route, target, name in work:
        job = store.add(origin="web", kind=route, input_path=target, out_dir=results_root, name=name)
        jobs.append({"id": job.id, "name": name, "kind": route, "status": job.status})
    return jobs
