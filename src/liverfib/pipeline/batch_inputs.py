"""The inputs of ``liverfib batch``: a folder (images, volumes or exam folders) or a manifest, and
the content hash that decides whether an input was already done."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from liverfib.errors import InputError
from liverfib.pipeline.batch_table import BASE_COLUMNS

__all__ = ["content_sha256", "list_batch_inputs"]

_MANIFEST_SUFFIXES = (".csv", ".parquet")


def _has_dicom(folder: Path) -> bool:
    from liverfib.io import sniff_kind

    return any(f.is_file() and sniff_kind(f) == "dicom" for f in folder.iterdir())


def _list_folder(root: Path, kind: str) -> list[Path]:
    """Inputs under ``root``: image files, volumes (NIfTI files, DICOM series folders) or exam folders."""
    from liverfib.io import list_images, sniff_kind

    if kind == "image":
        return list_images(root)
    if kind == "exam":
        subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        return subs or [root]
    found = [p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")
             and sniff_kind(p) == "nifti"]
    found += [d for d in sorted({root, *(p for p in root.rglob("*") if p.is_dir())}) if _has_dicom(d)]
    return sorted(found)


def _read_manifest(manifest: Path) -> tuple[list[Path], dict[str, dict[str, Any]]]:
    """A CSV/Parquet with a ``path`` column (relative paths are taken from the manifest's folder);
    the other columns are carried into the output rows."""
    import pandas as pd

    try:
        df = pd.read_parquet(manifest) if manifest.suffix == ".parquet" else pd.read_csv(manifest, dtype=str,
                                                                                        keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{manifest}: cannot read the manifest ({' '.join(str(exc).split())})") from None
    if "path" not in df.columns:
        raise InputError(f"{manifest}: a manifest needs a 'path' column, found {', '.join(map(str, df.columns))}")
    clash = [c for c in df.columns if c != "path" and c in BASE_COLUMNS]
    if clash:
        raise InputError(f"{manifest}: column(s) {', '.join(clash)} are written by liverfib batch; rename them")
    paths, extra = [], {}
    for rec in df.to_dict("records"):
        p = Path(str(rec.pop("path")))
        p = (p if p.is_absolute() else manifest.parent / p).absolute()
        if str(p) not in extra:
            paths.append(p)
            extra[str(p)] = rec
    return paths, extra


def list_batch_inputs(source: Path, kind: str) -> tuple[list[Path], dict[str, dict[str, Any]]]:
    """``(absolute input paths without repeats, {path: carried manifest columns})``."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() in _MANIFEST_SUFFIXES:
        paths, extra = _read_manifest(source)
    elif source.is_dir():
        paths, extra = [p.absolute() for p in _list_folder(source, kind)], {}
    else:
        raise InputError(f"{source}: expected a folder or a manifest (.csv/.parquet with a 'path' column)")
    if not paths:
        raise InputError(f"{source}: no inputs found for this task (looking for {kind} inputs)")
    return paths, extra


def content_sha256(path: Path) -> str:
    """SHA-256 of a file's content (links followed) or of a folder's files (names and bytes, sorted)."""
    from liverfib.io import resolve_file

    digest = hashlib.sha256()
    try:
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [resolve_file(path)]
        for f in files:
            if path.is_dir():
                digest.update(str(f.relative_to(path)).encode() + b"\0")
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    except (OSError, InputError):
        return ""  # unreadable: decode records the reason; an empty hash never matches an ok row
    return digest.hexdigest()

