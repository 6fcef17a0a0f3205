"""Read DICOM series folders: find the image series below a folder and stack its slices.

pydicom is imported inside the functions so that ``import liverfib.io`` stays light.

Conventions:
    * A series folder gives ``(D, H, W)``: slices sorted along the slice normal, then the voxel
      axes flipped/swapped towards patient L, P, S exactly as :func:`liverfib.io.nifti.read_nifti`
      does (:mod:`liverfib.io.orientation`), with ``spacing_mm = (z, y, x)`` and ``meta["affine"]``,
      the 4x4 NIfTI (RAS+) affine of that grid. The same scan therefore gives the same array and
      affine from DICOM and from NIfTI.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liverfib.errors import InputError
from liverfib.image import Image
from liverfib.io.dicom import dataset_to_image, read_checked_dataset
from liverfib.io.dicom_geometry import check_same_grid, series_affine, slice_spacing_mm, sort_slices
from liverfib.io.dicom_tags import has_dicom_marker, has_pixel_data, n_frames, read_header
from liverfib.io.orientation import apply_ornt_zyx, axcodes, invert_ornt, reorient_to_lps

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["SeriesInfo", "list_dicom_series", "read_dicom_series", "read_series_headers", "to_source_frames"]

#: Modalities of DICOM objects that are not images to analyse (skipped when looking for a series).
_NON_IMAGE_MODALITIES = frozenset(
    {"SEG", "SR", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "PR", "KO", "REG", "DOC"}
)


def read_dicom_series(folder: str | Path, *, series_uid: str | None = None) -> Image:
    """Read the one DICOM image series found anywhere below ``folder`` into a ``(D, H, W)`` volume.

    The folder is searched recursively (a study export with the series in a sub-folder works).
    Exactly one image series must be found, or ``series_uid`` must name one of them; SEG, SR,
    RTSTRUCT and other non-image objects are skipped and listed in ``meta["skipped"]`` with the
    files that are not DICOM.

    Slices are sorted by their position along the slice normal (ImagePositionPatient projected on
    the cross product of the ImageOrientationPatient row and column vectors), never by file name or
    InstanceNumber while positions are known. The volume is then reoriented (flips and axis swaps,
    no resampling) to the convention of :func:`liverfib.io.nifti.read_nifti`: axes towards L, P, S
    in ``(z, y, x)`` order, so one scan gives the same array from DICOM and from NIfTI. A folder
    holding a single multi-frame file is read as that file.

    Returns:
        ``(D, H, W)`` image with ``spacing_mm = (z, y, x)`` (``None`` if the files do not give it);
        where positions are known ``meta["affine"]`` (RAS+, voxel ``(x, y, z)`` -> mm),
        ``meta["native_affine"]`` (the same for the stack in slice order: x = column, y = row,
        z = slice) and ``meta["files"]``/``meta["sop_instance_uids"]`` in slice order;
        :func:`to_source_frames` maps an array on the volume grid back onto those slices.

    Raises:
        InputError: empty folder, no image series, several series without ``series_uid`` (each is
            listed with UID, description, modality and number of slices), unknown ``series_uid``,
            inconsistent slice grids, duplicate slice positions, or any unreadable DICOM file (named).
    """
    folder = Path(folder)
    series, chosen, skipped = _find_series(folder, series_uid)
    datasets = _pixel_datasets(folder, chosen, skipped)
    if len(datasets) == 1 and n_frames(datasets[0][1]) > 1:  # one multi-frame file: read as that file
        image = dataset_to_image(datasets[0][1], datasets[0][0], frame=None)
        return image.with_array(image.array, meta={**image.meta, "skipped": skipped})
    check_same_grid(folder, datasets)
    ordered, positions, sorted_by = sort_slices(folder, datasets)
    slices = [dataset_to_image(ds, f, frame=None) for f, ds in ordered]
    volume, meta = _stack(folder, slices, ordered, sorted_by, skipped, len(series))
    slice_mm = slice_spacing_mm(folder, positions, ordered[0][1], meta)  # warns at our caller
    pixel_mm = slices[0].meta.get("pixel_spacing_mm")
    spacing = (slice_mm, *pixel_mm) if slice_mm is not None and pixel_mm is not None else None
    if positions is not None and spacing is not None:
        volume, spacing = _reorient(volume, ordered, positions, spacing, meta)
    return Image(array=volume, spacing_mm=spacing, modality=slices[0].modality, path=folder, meta=meta)


def _find_series(
    folder: Path, series_uid: str | None
) -> tuple[list[SeriesInfo], SeriesInfo, list[tuple[str, str]]]:
    """All image series below ``folder``, the one to read, and the files skipped so far."""
    if not folder.exists():
        raise InputError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise InputError(f"{folder}: expected a folder holding one DICOM series, got a file")
    series, skipped, n_files = list_dicom_series(folder)
    if n_files == 0:
        raise InputError(f"{folder}: empty folder, expected the DICOM files of one series")
    if not series:
        what = ", ".join(f"{name} ({why})" for name, why in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        raise InputError(f"{folder}: no DICOM images in folder ({n_files} files: {what}{more})")
    chosen = _choose_series(folder, series, series_uid)
    if len(series) > 1:
        skipped = [
            *skipped,
            *((_rel(f, folder), f"series {s.uid}") for s in series if s is not chosen for f in s.files),
        ]
    return series, chosen, skipped


def _pixel_datasets(
    folder: Path, chosen: SeriesInfo, skipped: list[tuple[str, str]]
) -> list[tuple[Path, Dataset]]:
    """The files of ``chosen`` that hold pixel data, parsed (the others are added to ``skipped``)."""
    datasets: list[tuple[Path, Dataset]] = []
    for f in chosen.files:
        ds = read_checked_dataset(f)
        if not has_pixel_data(ds):
            skipped.append((_rel(f, folder), "no pixel data"))
            continue
        datasets.append((f, ds))
    if not datasets:
        raise InputError(f"{folder}: series {chosen.uid} holds no image with pixel data")
    multi = [f for f, ds in datasets if n_frames(ds) > 1]
    if multi and len(datasets) > 1:
        raise InputError(
            f"{folder}: holds {len(multi)} multi-frame files ({_names(multi)}) among {len(datasets)} "
            "DICOM files; read multi-frame files one by one with read_dicom"
        )
    return datasets


def _stack(
    folder: Path,
    slices: list[Image],
    ordered: list[tuple[Path, Dataset]],
    sorted_by: str,
    skipped: list[tuple[str, str]],
    n_series: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """``(D, H, W)`` volume of the ordered slices (float32 if any is float) and its metadata."""
    arrays = [s.array for s in slices]
    dtype = np.float32 if any(a.dtype.kind == "f" for a in arrays) else np.result_type(*arrays)
    volume = np.stack([a.astype(dtype, copy=False) for a in arrays])
    meta: dict[str, Any] = {
        **slices[0].meta,
        "n_slices": len(slices),
        "files": [_rel(f, folder) for f, _ in ordered],
        "sop_instance_uids": [str(ds.get("SOPInstanceUID", "")) for _, ds in ordered],
        "sorted_by": sorted_by,
        "skipped": skipped,
        "is_sequence": False,
        "n_series_found": n_series,
    }
    meta["colour"] = any(s.meta.get("colour", False) for s in slices)
    return volume, meta


def _reorient(
    volume: np.ndarray,
    ordered: list[tuple[Path, Dataset]],
    positions: np.ndarray,
    spacing: tuple[float, ...],
    meta: dict[str, Any],
) -> tuple[np.ndarray, tuple[float, ...]]:
    """Flip/swap the stacked volume towards L, P, S; the affines and transform go into ``meta``."""
    native_affine = series_affine(ordered, positions, spacing)
    zooms_xyz = [float(spacing[2]), float(spacing[1]), float(spacing[0])]
    volume, affine, spacing, transform = reorient_to_lps(volume.T, native_affine, zooms_xyz)
    meta["affine"] = affine
    meta["native_affine"] = native_affine
    meta["native_ornt"] = transform.tolist()
    meta["axcodes"] = axcodes(affine)
    return volume, spacing


def to_source_frames(array: np.ndarray, image: Image) -> np.ndarray:
    """Map ``array`` (on the grid of ``image``, a volume from :func:`read_dicom_series`) back onto
    the source slices: ``(n_slices, Rows, Columns)`` in the order of ``image.meta["files"]``.

    Raises:
        InputError: shapes differ.
    """
    if array.shape != image.shape:
        raise InputError(f"array shape {array.shape} differs from the volume shape {image.shape}")
    transform = image.meta.get("native_ornt")
    if transform is None:  # never reoriented: already in slice order
        return np.ascontiguousarray(array)
    return apply_ornt_zyx(array, invert_ornt(np.asarray(transform, dtype=float)))


def read_series_headers(image: Image) -> list[Dataset]:
    """The headers (no pixel data) of the slices of a volume from :func:`read_dicom_series`, in the
    order of ``image.meta["files"]`` (the order of :func:`to_source_frames`).

    Raises:
        InputError: ``image`` is not a DICOM series volume, or a file is gone or unreadable.
    """
    files = image.meta.get("files")
    if image.path is None or not image.path.is_dir() or not files or image.meta.get("format") != "DICOM":
        raise InputError(f"{image.name}: not a volume read from a DICOM series folder")
    return [read_header(image.path / f) for f in files]


@dataclass(frozen=True)
class SeriesInfo:
    """One image series found below a folder: its UID, description, modality and files."""

    uid: str
    description: str
    modality: str
    files: tuple[Path, ...]

    def describe(self, root: Path) -> str:
        """``UID 'description' (CT, 11 slices, in sub/folder)``."""
        parents = sorted({_rel(f.parent, root) for f in self.files})
        where = parents[0] if len(parents) == 1 else f"{len(parents)} folders"
        desc = f" {self.description!r}" if self.description else ""
        n = len(self.files)
        return f"{self.uid}{desc} ({self.modality or '?'}, {n} slice{'s' if n != 1 else ''}, in {where})"


def list_dicom_series(folder: str | Path) -> tuple[list[SeriesInfo], list[tuple[str, str]], int]:
    """Image series anywhere below ``folder`` (headers only; pixel data is not read).

    Returns:
        ``(series, skipped, n_files)``: series sorted by SeriesNumber then UID; ``skipped`` lists
        ``(relative path, reason)`` for files that are not DICOM or not images (SEG, SR, ...);
        ``n_files`` counts every non-hidden file seen.

    Raises:
        InputError: a DICOM file whose header cannot be parsed (named).
    """
    folder = Path(folder)
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    groups: dict[str, list[Path]] = defaultdict(list)
    info: dict[str, tuple[str, str, int]] = {}
    skipped: list[tuple[str, str]] = []
    for f in files:
        if not has_dicom_marker(f):
            skipped.append((_rel(f, folder), "not DICOM"))
            continue
        ds = read_header(f)
        modality = str(ds.get("Modality", "") or "").strip().upper()
        if modality in _NON_IMAGE_MODALITIES or ds.get("Rows") is None:
            kind = modality if modality in _NON_IMAGE_MODALITIES else "no pixel data"
            skipped.append((_rel(f, folder), kind if kind == "no pixel data" else f"{kind}, not an image"))
            continue
        uid = str(ds.get("SeriesInstanceUID", "") or "<no SeriesInstanceUID>")
        groups[uid].append(f)
        if uid not in info:
            try:
                number = int(ds.get("SeriesNumber", 0) or 0)
            except (TypeError, ValueError):
                number = 0
            info[uid] = (str(ds.get("SeriesDescription", "") or ""), modality, number)
    series = [SeriesInfo(uid, info[uid][0], info[uid][1], tuple(fs)) for uid, fs in groups.items()]
    series.sort(key=lambda s: (info[s.uid][2], s.uid))
    return series, skipped, len(files)


def _choose_series(folder: Path, series: list[SeriesInfo], series_uid: str | None) -> SeriesInfo:
    """The series named by ``series_uid``, else the only one; several without a UID is an error."""
    listed = "; ".join(s.describe(folder) for s in series)
    if series_uid is not None:
        for s in series:
            if s.uid == series_uid:
                return s
        raise InputError(f"{folder}: no series with UID {series_uid}; found {len(series)}: {listed}")
    if len(series) > 1:
        raise InputError(
            f"{folder}: holds {len(series)} DICOM image series, pass --series UID to pick one: {listed}"
        )
    return series[0]


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as text ('.' for the root itself)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _names(paths: list[Path], limit: int = 3) -> str:
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
