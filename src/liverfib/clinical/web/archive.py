"""Safe zip extraction for uploads: zip-slip and zip-bomb checks, sizes counted while extracting."""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from liverfib.clinical.web.config import UploadRejected, WebConfig

__all__ = ["safe_extract_zip"]


def _safe_member_path(name: str) -> PurePosixPath:
    raw = name.replace("\\", "/")
    path = PurePosixPath(raw)
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw) or ".." in path.parts or "\0" in raw:
        raise UploadRejected(400, f"zip member {name[:80]!r} points outside the upload (zip-slip); refused")
    return path


def safe_extract_zip(source: Path | BinaryIO, dest: Path, cfg: WebConfig) -> list[Path]:
    """Extract a zip into ``dest`` with zip-slip and zip-bomb checks; returns the extracted files.

    Raises:
        UploadRejected: corrupt zip, hostile member name, symlink, encryption, or size limits.
    """
    try:
        zf = zipfile.ZipFile(source)
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise UploadRejected(400, f"corrupt zip file ({exc})") from None
    if len(infos) > cfg.max_zip_members:
        raise UploadRejected(413, f"zip holds {len(infos)} members; at most {cfg.max_zip_members} allowed")
    declared = sum(i.file_size for i in infos)
    if declared > cfg.max_zip_total_bytes:
        raise UploadRejected(
            413, f"zip expands to {declared} bytes, above the limit of {cfg.max_zip_total_bytes} (zip bomb?)"
        )
    plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    for info in infos:
        rel = _safe_member_path(info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UploadRejected(400, f"zip member {info.filename[:80]!r} is a symbolic link; refused")
        if info.flag_bits & 0x1:
            raise UploadRejected(400, f"zip member {info.filename[:80]!r} is encrypted; refused")
        if info.is_dir() or not rel.parts or any(p.startswith(".") or p == "__MACOSX" for p in rel.parts):
            continue
        if info.file_size > cfg.max_zip_member_bytes:
            raise UploadRejected(413, f"zip member {info.filename[:80]!r} is {info.file_size} bytes; too large")
        if info.file_size > 1024 * 1024 and info.file_size > cfg.max_zip_ratio * max(1, info.compress_size):
            raise UploadRejected(
                413, f"zip member {info.filename[:80]!r} compresses {info.file_size / max(1, info.compress_size):.0f}:1 (zip bomb?); refused"
            )
        plan.append((info, rel))
    root = dest.resolve()
    written: list[Path] = []
    total = 0
    try:
        for info, rel in plan:
            target = (root / Path(*rel.parts)).resolve()
            if root not in target.parents:
                raise UploadRejected(400, f"zip member {info.filename[:80]!r} escapes the upload folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            with zf.open(info) as src, target.open("wb") as out:
                while chunk := src.read(1 << 20):
                    size += len(chunk)
                    total += len(chunk)
                    if size > min(info.file_size, cfg.max_zip_member_bytes) or total > cfg.max_zip_total_bytes:
                        raise UploadRejected(413, f"zip member {info.filename[:80]!r} expands beyond its declared size or the limit (zip bomb?)")
                    out.write(chunk)
            written.append(target)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise UploadRejected(400, f"corrupt zip member ({type(exc).__name__}: {exc})") from None
    except UploadRejected:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return written

