"""MR/CT liver segmentation of volumes and slices (``segment --modality mr|ct``) with the 2D/3D
MONAI segmenter: masks on the input grid, a QC montage and, for DICOM series, a DICOM SEG."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline._modality import check_segment_modality
from liverfib.pipeline._mri_common import VOLUME_SUFFIXES, file_stem

__all__ = ["run_segment_volume"]


def run_segment_volume(
    paths: list[Path],
    *,
    out: Path,
    model: str = "default",
    as_json: bool = False,
    modality: str | None = None,
    series_uid: str | None = None,
    dicom_seg: bool = False,
) -> tuple[dict, str]:
    """Liver masks for MR/CT inputs with the 2D/3D MONAI segmenter.

    * a NIfTI file or DICOM series folder (searched recursively; ``series_uid`` picks one of
      several) -> ``out`` = ``mask.nii.gz`` (one input) or a folder (``<stem>_mask.nii.gz`` per
      input). The mask keeps the input's grid: a NIfTI input's own voxel order and affine, a DICOM
      input the affine its slice geometry gives. Beside it ``<mask>_qc.png`` (slices per axis with the
      mask outline and the volume in ml) and, with ``dicom_seg``, ``<mask>_seg.dcm``: a DICOM SEG
      whose frames reference the source slices (DICOM input only). JSON gives the liver ``volume_ml``.
    * a 2D slice (PNG/JPEG/single-frame DICOM) -> ``out`` is a folder; ``<stem>_mask.png`` uint8 0/255.

    ``modality`` ('mr' or 'ct'): inputs whose DICOM Modality says otherwise, or that are colour or
    cine, are refused before anything is written.
    """
    from liverfib.pipeline._mri_common import liver_segmenter

    paths, out = [Path(p) for p in paths], Path(out)
    images = _read_inputs(paths, out, modality=modality, series_uid=series_uid, dicom_seg=dicom_seg)
    seg = liver_segmenter(model)
    results = [_segment_one(seg, path, image, target, dicom_seg) for path, image, target in images]
    summary: dict[str, Any] = {"model": str(model), "model_info": seg.info.get("trained_on"), "results": results}
    if len(results) == 1 and "volume_ml" in results[0]:
        summary["volume_ml"] = results[0]["volume_ml"]
    lines = []
    for r in results:
        what = f"liver {r['volume_ml']} ml" if r.get("volume_ml") is not None else f"{r['liver_voxels']} liver voxels"
        extra = "".join(f", {k.replace('_', ' ')} {r[k]}" for k in ("qc_png", "dicom_seg") if k in r)
        lines.append(f"{r['input']}: {what} -> {r['mask']}{extra} ({r['seconds']} s)")
    return summary, "\n".join(lines)


def _read_inputs(paths: list[Path], out: Path, *, modality: str | None, series_uid: str | None,
                 dicom_seg: bool) -> list[tuple[Path, Any, Path]]:
    """Check the options, then read and check every input before anything is written ->
    ``(path, image, mask target)`` per input."""
    from liverfib.io import read_image
    from liverfib.io.dicom_series import read_dicom_series

    if not paths:
        raise InputError("No input given; pass a NIfTI volume, a DICOM series folder or a 2D slice")
    out_is_file = out.name.endswith((*VOLUME_SUFFIXES, ".png"))
    if out_is_file and len(paths) > 1:
        raise ConfigError(f"--out {out} names one file but {len(paths)} inputs were given; pass a folder")
    if series_uid is not None and not any(p.is_dir() for p in paths):
        raise ConfigError(f"--series {series_uid} picks a DICOM series inside a folder; no folder was given")
    if dicom_seg:
        not_series = [str(p) for p in paths if not p.is_dir()]
        if not_series:
            raise ConfigError(f"--dicom-seg needs DICOM series folders as input (the SEG references their "
                              f"slices); not a folder: {', '.join(not_series[:3])}")
    images = []
    for path in paths:
        image = read_dicom_series(path, series_uid=series_uid) if path.is_dir() else read_image(path)
        if image.meta.get("is_sequence"):
            raise InputError(f"{path}: a cine/multi-frame sequence, expected an MR/CT volume or slice")
        reason = check_segment_modality(image, modality or "mr/ct")
        if reason:
            raise InputError(f"{path}: {reason}")
        images.append((path, image, _mask_target(path, image, out, out_is_file, dicom_seg)))
    return images


def _mask_target(path: Path, image: Any, out: Path, out_is_file: bool, dicom_seg: bool) -> Path:
    """Where the mask of ``path`` goes; refuses an ``out`` that does not suit a volume or a slice."""
    if image.ndim == 3:
        target = out if out_is_file else out / f"{file_stem(path)}_mask.nii.gz"
        if not target.name.endswith(VOLUME_SUFFIXES):
            raise ConfigError(f"{path} is a volume; --out must end in .nii.gz (or be a folder), got {out}")
        if dicom_seg and "native_ornt" not in image.meta:
            raise InputError(f"{path}: --dicom-seg needs slices with ImagePositionPatient/Orientation")
        return target
    if out_is_file:
        raise ConfigError(f"{path} is a 2D slice; --out must be a folder (writes <stem>_mask.png), got {out}")
    if dicom_seg:
        raise ConfigError(f"{path}: --dicom-seg is for volumes (DICOM series folders), got a 2D slice")
    return out / f"{file_stem(path)}_mask.png"


def _segment_one(seg: Any, path: Path, image: Any, target: Path, dicom_seg: bool) -> dict[str, Any]:
    """Segment one input, write its mask (and for a volume the QC montage, optionally the SEG) -> JSON entry."""
    from liverfib.mri.maskio import write_mask_like
    from liverfib.mri.shape import liver_volume_ml
    from liverfib.report.montage import write_mask_montage

    t0 = time.time()
    mask = seg.segment(image.array)
    write_mask_like(mask, image, target)
    entry: dict[str, Any] = {
        "input": str(path),
        "mask": str(target),
        "kind": "volume" if image.ndim == 3 else "slice",
        "modality": image.modality,
        "shape": list(image.shape),
        "spacing_mm": list(image.spacing_mm) if image.spacing_mm else None,
        "liver_voxels": int(mask.sum()),
    }
    if image.ndim == 3:
        volume_ml = round(liver_volume_ml(mask, image.spacing_mm), 2) if image.spacing_mm else None
        entry["volume_ml"] = volume_ml
        base = target.parent / file_stem(target)
        qc = write_mask_montage(image.array, mask, base.with_name(base.name + "_qc.png"),
                                spacing_mm=image.spacing_mm, volume_ml=volume_ml,
                                title=f"{path.name} ({image.modality}), liverfib MR/CT liver segmenter",
                                window=(-160.0, 240.0) if image.modality == "CT" else None)
        entry["qc_png"] = str(qc)
        if dicom_seg:
            entry["dicom_seg"] = str(_write_volume_seg(image, mask, base.with_name(base.name + "_seg.dcm")))
        if image.meta.get("SeriesInstanceUID"):
            entry["series_uid"] = image.meta["SeriesInstanceUID"]
    else:
        entry["area_mm2"] = (
            round(float(mask.sum() * image.spacing_mm[0] * image.spacing_mm[1]), 1) if image.spacing_mm else None
        )
    entry["seconds"] = round(time.time() - t0, 2)
    return entry


def _write_volume_seg(image: Any, mask: Any, path: Path) -> Path:
    """DICOM SEG of ``mask`` (on the volume grid) whose frames reference the source slices."""
    from liverfib.io.dicom_series import read_series_headers, to_source_frames
    from liverfib.report.dicom import write_seg_series

    write_seg_series(read_series_headers(image), to_source_frames(mask, image), path)
    return path
