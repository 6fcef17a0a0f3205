"""3D jobs of the clinical workflow: liver segmentation of an uploaded CT/MR NIfTI volume, and the
volumes an MRE job leaves for the web app's volume viewer."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

from liverfib.errors import LiverfibError
from liverfib.pipeline.clinical.config import ModelCache
from liverfib.pipeline.clinical.context import accuracy_of

__all__ = ["analyse_volume", "write_mre_volumes", "SEGMENT_3D_LEGEND"]

#: What the colours of a 3D segmentation result mean (the viewer's layers).
SEGMENT_3D_LEGEND = "gray = the uploaded volume; red = liver mask (MR/CT segmenter)"


def _gzipped_copy(src: Path, dst: Path) -> Path:
    """``src`` (NIfTI, plain or gzip) as ``dst`` (``.nii.gz``)."""
    from liverfib.io.atomic import atomic_write

    with src.open("rb") as fh:
        compressed = fh.read(2) == b"\x1f\x8b"
    with src.open("rb") as fh, atomic_write(dst, "wb") as out:
        if compressed:
            shutil.copyfileobj(fh, out)
        else:
            with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
                shutil.copyfileobj(fh, gz)
    return dst


def analyse_volume(job: Any, models: ModelCache) -> tuple[str, dict[str, Any] | None, str | None]:
    """A ``segment-3d`` job (a checked NIfTI upload) -> ``(status, result, error)``; see
    :func:`_segment_volume`. ``models`` is unused: the MR/CT segmenter is the shipped default."""
    try:
        return "done", _segment_volume(job), None
    except LiverfibError as exc:
        return "failed", None, str(exc)


def _segment_volume(job: Any, model: str = "default") -> dict[str, Any]:
    """The NIfTI upload -> ``volume.nii.gz`` (the input, for the viewer), ``liver_mask.nii.gz`` (same
    grid), ``liver_mask_qc.png`` and ``result.json``, through
    :func:`liverfib.pipeline.segment_volume.run_segment_volume` with the MR/CT liver segmenter ``model``."""
    from liverfib.io.jsonio import write_json
    from liverfib.pipeline.segment_volume import run_segment_volume

    out_dir = Path(job.out_dir) / job.id
    volume = _gzipped_copy(Path(job.input_path), out_dir / "volume.nii.gz")
    summary, _text = run_segment_volume([volume], out=out_dir / "liver_mask.nii.gz", model=model)
    entry = summary["results"][0]
    volume_ml = entry.get("volume_ml")
    notes = [] if entry["liver_voxels"] else ["the segmenter found no liver in this volume"]
    result: dict[str, Any] = {
        "status": "done",
        "name": job.name,
        "route": "segment-3d",
        "liver_volume_ml": volume_ml,
        "shape": entry["shape"],
        "spacing_mm": entry["spacing_mm"],
        "notes": notes,
        "models": {"liver segmentation": f"MR/CT liver segmenter ({model})"},
        "model_accuracy": accuracy_of("mri_seg_default" if model == "default" else None, model),
        "overlay_legend": SEGMENT_3D_LEGEND,
        "synthetic": False,
        "files": ["volume.nii.gz", "liver_mask.nii.gz", "liver_mask_qc.png", "result.json"],
    }
    write_json(result, out_dir / "result.json")
    return result


def write_mre_volumes(study_dir: Path, out_dir: Path) -> list[str]:
    """Beside the ``liver_mask.nii.gz`` of an MRE job: ``stiffness_kpa.nii.gz`` (kPa) and, when the
    exam has one, ``magnitude.nii.gz``, on the same grid (the viewer overlays them). Returns the
    names written; none when the exam does not read as one exam."""
    from liverfib.image import Image
    from liverfib.io.nifti import write_nifti
    from liverfib.mre.dicom import read_mre_exams

    exams = read_mre_exams(study_dir)
    if len(exams) != 1:
        return []
    exam = exams[0]
    spacing = exam.stiffness_kpa.spacing_mm
    written = [write_nifti(Image(exam.stiffness_kpa.array.astype("float32"), spacing_mm=spacing, modality="MR"),
                           out_dir / "stiffness_kpa.nii.gz")]
    if exam.magnitude is not None and exam.magnitude.array.shape == exam.stiffness_kpa.array.shape:
        written.append(write_nifti(Image(exam.magnitude.array, spacing_mm=spacing, modality="MR"),
                                   out_dir / "magnitude.nii.gz"))
    return [p.name for p in written]
