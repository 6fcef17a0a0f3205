"""List a labelled image collection: sub-folders named by label, or a CSV of path,label[,patient]."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from liverfib.errors import InputError

__all__ = ["LabelledItem", "list_labelled"]


@dataclass(frozen=True)
class LabelledItem:
    """One file of a labelled collection. ``rel`` is the path relative to the collection root."""

    path: Path
    rel: str
    label: str
    patient: str | None = None


def list_labelled(root: str | Path, labels_csv: str | Path | None = None) -> list[LabelledItem]:
    """List files with labels.

    Without ``labels_csv`` every direct sub-folder of ``root`` is a label (``F0``..``F4`` for the
    ultrasound set) and holds its images (recursively). With ``labels_csv`` (columns ``path,label``
    and optionally ``patient``; paths relative to ``root``) the CSV decides.
    """
    from liverfib.io.reader import list_images

    root = Path(root)
    if not root.is_dir():
        raise InputError(
            f"{root}: expected a dataset folder, found {'a file' if root.exists() else 'nothing'}"
        )
    if labels_csv is not None:
        return _from_csv(root, Path(labels_csv))
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not subdirs:
        raise InputError(
            f"{root}: expected one sub-folder per label (e.g. F0..F4) or --labels CSV; found no sub-folders"
        )
    items: list[LabelledItem] = []
    for d in subdirs:
        try:
            files = list_images(d)
        except InputError:
            continue
        items.extend(LabelledItem(p, p.relative_to(root).as_posix(), d.name) for p in files)
    if not items:
        raise InputError(f"{root}: sub-folders {', '.join(d.name for d in subdirs)} hold no image files")
    return items


def _from_csv(root: Path, csv_path: Path) -> list[LabelledItem]:
    if not csv_path.is_file():
        raise InputError(f"{csv_path}: labels CSV not found")
    with csv_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if not {"path", "label"} <= cols:
            raise InputError(f"{csv_path}: expected columns path,label[,patient]; found {sorted(cols)}")
        items = []
        for i, row in enumerate(reader, start=2):
            p = root / row["path"]
            if not row["label"]:
                raise InputError(f"{csv_path}:{i}: empty label for {row['path']}")
            items.append(LabelledItem(p, row["path"], row["label"], row.get("patient") or None))
    if not items:
        raise InputError(f"{csv_path}: no rows")
    return items
