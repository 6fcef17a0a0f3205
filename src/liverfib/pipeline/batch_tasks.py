"""The task table of ``liverfib batch``: how each inference task loads, decodes and runs, as plain data.

One :class:`BatchTask` per task name. The batch engine (:mod:`liverfib.pipeline.batch`) knows
nothing task-specific: it calls ``load`` once per Ray worker, ``decode`` for each input in parallel
Ray tasks, and ``run`` on a batch of decoded inputs inside the worker. The adapters are thin: each
reuses the code of the matching single-process command, so ``batch --task us-staging`` gives the
values of ``liverfib predict``, ``us-segment`` those of ``segment --modality us``, ``ct-segment`` /
``mr-segment`` those of ``segment --modality ct|mr``, ``mre`` those of ``liverfib mre`` and
``radiomics`` those of ``radiomics extract --roi liver``.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liverfib.errors import InputError
from liverfib.pipeline._modality import check_segment_modality

__all__ = ["BATCH_TASKS", "BatchTask", "get_task", "mask_name"]



@dataclass(frozen=True)
class BatchTask:
    """One batch inference task.

    Attributes:
        name: the ``--task`` value.
        inputs: what one input is: ``image`` (a 2D image file), ``volume`` (a NIfTI file or a DICOM
            series folder) or ``exam`` (an MRE exam folder).
        checkpoint: ``model -> bundle`` (folder or zip) whose bytes identify the weights (hashed into the ``model`` column).
        load: ``(model, engine) -> loaded`` called once per worker.
        decode: ``path -> decoded`` run in parallel Ray tasks (must pickle small); ``None``: ``run``
            reads the path itself (volumes and exams stay off the object store).
        run: ``(loaded, decoded, paths, mask_dir) -> one output dict per input``; raises
            :class:`~liverfib.errors.LiverfibError` for an input it cannot process.
        columns: ``{name: Arrow type}`` of the outputs every ``ok`` row has (besides path, sha256, task,
            model, status, error); typed so that shards holding only error rows keep the schema.
    """

    name: str
    inputs: str
    checkpoint: Callable[[str], Path]
    load: Callable[[str, str], Any]
    decode: Callable[[Path], Any] | None
    run: Callable[[Any, list[Any], list[Path], Path], list[dict[str, Any]]]
    columns: dict[str, str]


def mask_name(path: Path, suffix: str) -> str:
    """A mask file name unique per input path: ``<stem>-<8 hex of the path>``+suffix."""
    stem = path.name.split(".")[0] or "input"
    return f"{stem}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}{suffix}"


def _given_or(shipped_task: str) -> Callable[[str], Path]:
    """``model -> bundle``: ``default`` is the shipped bundle of ``shipped_task`` (see models.assets)."""
    from liverfib.models.assets import resolve_model

    return lambda model: resolve_model(model, shipped_task)


# ------------------------------------------------------------------------------- us-staging
def _load_staging(model: str, engine: str) -> Any:
    from liverfib.inference.predictor import load_predictor

    return load_predictor(model, engine=engine)


def _decode_bmode(path: Path) -> tuple[Any, str | None]:
    """Read and check one B-mode image -> ``(array (H, W), warning)``, as ``predict`` does."""
    from liverfib.inference.predictor import check_bmode
    from liverfib.io import read_image

    image = read_image(path)
    return image.array, check_bmode(image)


def _run_staging(predictor: Any, decoded: list[Any], paths: list[Path], mask_dir: Path) -> list[dict[str, Any]]:
    from liverfib.inference.predictor import PredictOutput

    probs = predictor.predict_arrays([a for a, _ in decoded])
    records = PredictOutput(list(paths), probs, predictor.classes, [w for _, w in decoded]).as_records()
    return [
        {"stage": r["stage"], **{f"prob_{c}": v for c, v in r["probabilities"].items()},
         "p_ge_f2": r["p_ge_f2"], "p_ge_f3": r["p_ge_f3"], "p_f4": r["p_f4"], "warning": r.get("warning", "")}
        for r in records
    ]


# ------------------------------------------------------------------------------- us-segment
def _load_us_segmenter(model: str, engine: str) -> Any:
    from liverfib.inference.segmenter import load_segmenter

    return load_segmenter(model)


def _decode_image(path: Path) -> Any:
    from liverfib.io import read_image

    image = read_image(path)
    if image.ndim != 2:
        raise InputError(f"{path}: expected a 2D image, got shape {image.shape}")
    reason = check_segment_modality(image, "us")  # as `segment --modality us`
    if reason:
        raise InputError(f"{path}: {reason}")
    return image


def _run_us_segment(seg: Any, images: list[Any], paths: list[Path], mask_dir: Path) -> list[dict[str, Any]]:
    from liverfib.io.masks import write_mask_png

    out = []
    for image, mask, path in zip(images, seg.predict_arrays([im.array for im in images]), paths, strict=True):
        target = write_mask_png(mask, mask_dir / mask_name(path, "_mask.png"))
        area_px, sp = int(mask.sum()), image.spacing_mm
        out.append({"mask_path": str(target), "area_px": area_px,
                    "area_mm2": round(area_px * sp[0] * sp[1], 1) if sp else None,
                    "fraction": round(area_px / mask.size, 4), "warning": "" if area_px else "no liver found"})
    return out


# ------------------------------------------------------------------------ ct-/mr-segment
def _load_volume_segmenter(model: str, engine: str) -> Any:
    from liverfib.pipeline._mri_common import liver_segmenter

    return liver_segmenter(model)


def _run_volume_segment(seg: Any, decoded: list[Any], paths: list[Path], mask_dir: Path, *,
                        modality: str) -> list[dict[str, Any]]:
    """Same steps as ``segment --modality ct|mr`` (:func:`liverfib.pipeline.segment_volume.run_segment_volume`)."""
    from liverfib.io import read_image
    from liverfib.mri.maskio import write_mask_like
    from liverfib.mri.shape import liver_volume_ml

    out = []
    for path in paths:
        image = read_image(path)
        if image.meta.get("is_sequence") or image.ndim != 3:
            raise InputError(f"{path}: expected a 3D CT/MR volume, got shape {image.shape}")
        reason = check_segment_modality(image, modality)  # as `segment --modality ct|mr`
        if reason:
            raise InputError(f"{path}: {reason}")
        mask = seg.segment(image.array)
        target = write_mask_like(mask, image, mask_dir / mask_name(path, "_mask.nii.gz"))
        sp = image.spacing_mm
        out.append({"mask_path": str(target), "liver_voxels": int(mask.sum()),
                    "volume_ml": round(liver_volume_ml(mask, sp), 2) if sp else None})
    return out


# ------------------------------------------------------------------------------------- mre
def _load_mre(model: str, engine: str) -> str:
    from liverfib.models.assets import resolve_model
    from liverfib.models.bundle import load_bundle

    load_bundle(resolve_model(model, "mre-seg"), task="mre-seg")  # fail early on a bad bundle; run_mre loads its own
    return model


def _run_mre(model: str, decoded: list[Any], paths: list[Path], mask_dir: Path) -> list[dict[str, Any]]:
    """One ``liverfib mre`` per exam; its liver mask and ROI go to ``mask_dir/<exam>/``."""
    from liverfib.pipeline.mre import run_mre

    out = []
    for path in paths:
        exam_out = mask_dir / mask_name(path, "")
        summary, _ = run_mre(path, out_dir=exam_out, model=model, overlays=False)
        out.append({"mask_path": str(exam_out / "liver_mask.nii.gz"), "stage": summary["stage"],
                    "mean_stiffness_kpa": summary["mean_stiffness_kpa"], "roi_area_mm2": summary["roi_area_mm2"],
                    "n_slices": summary["n_slices"]})
    return out


# ------------------------------------------------------------------------------- radiomics
def _load_radiomics(model: str, engine: str) -> Any:
    from liverfib.radiomics.config import load_config

    return load_config(None if model == "default" else Path(model))


def _run_radiomics(config: Any, images: list[Any], paths: list[Path], mask_dir: Path) -> list[dict[str, Any]]:
    """``radiomics extract --roi liver``: pyradiomics features in the liver segmenter's mask."""
    from liverfib.radiomics.extract import extract_features, roi_mask

    out = []
    for image in images:
        mask = roi_mask(image, "liver")
        out.append({"roi": "liver", "roi_pixels": int(mask.sum()), **extract_features(image, mask, config)})
    return out


_STAGING = {"stage": "string", **{f"prob_F{k}": "float64" for k in range(5)}, "p_ge_f2": "float64",
            "p_ge_f3": "float64", "p_f4": "float64", "warning": "string"}
_US_SEG = {"mask_path": "string", "area_px": "int64", "area_mm2": "float64", "fraction": "float64", "warning": "string"}
_VOL_SEG = {"mask_path": "string", "liver_voxels": "int64", "volume_ml": "float64"}
_MRE = {"mask_path": "string", "stage": "string", "mean_stiffness_kpa": "float64", "roi_area_mm2": "float64",
        "n_slices": "int64"}

#: Every task ``liverfib batch --task`` runs. ``model``: ``default`` or a checkpoint path (for
#: ``radiomics`` an extraction YAML; its ROI comes from the shipped ultrasound liver segmenter, and
#: its rows also hold one float64 column per pyradiomics feature).
BATCH_TASKS: dict[str, BatchTask] = {
    t.name: t
    for t in (
        BatchTask("us-staging", "image", _given_or("us-staging"), _load_staging,
                  _decode_bmode, _run_staging, _STAGING),
        BatchTask("us-segment", "image", _given_or("us-liver-seg"), _load_us_segmenter,
                  _decode_image, _run_us_segment, _US_SEG),
        BatchTask("ct-segment", "volume", _given_or("mri-seg"), _load_volume_segmenter,
                  None, functools.partial(_run_volume_segment, modality="ct"), _VOL_SEG),
        BatchTask("mr-segment", "volume", _given_or("mri-seg"), _load_volume_segmenter,
                  None, functools.partial(_run_volume_segment, modality="mr"), _VOL_SEG),
        BatchTask("mre", "exam", _given_or("mre-seg"), _load_mre, None, _run_mre,
                  _MRE),
        BatchTask("radiomics", "image", _given_or("us-liver-seg"), _load_radiomics,
                  _decode_image, _run_radiomics, {"roi": "string", "roi_pixels": "int64"}),
    )
}


def get_task(name: str) -> BatchTask:
    """The task called ``name``; an unknown name lists the valid ones."""
    if name not in BATCH_TASKS:
        from liverfib.errors import unknown_choice

        raise unknown_choice("task", name, BATCH_TASKS)
    return BATCH_TASKS[name]
