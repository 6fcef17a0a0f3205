"""MRI workflows: liver segmentation (MR/CT volumes and slices), multi-phase staging, datasets.

Each ``run_*`` returns ``(json_summary, human_text)`` like the rest of :mod:`liverfib.pipeline`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError

__all__ = [
    "run_segment_volume",
    "run_mri_stage",
    "run_mri_phantom",
    "run_mri_inspect",
    "run_mri_train",
    "run_train_seg_mri",
]

_VOLUME_SUFFIXES = (".nii.gz", ".nii")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (*_VOLUME_SUFFIXES, ".png", ".jpg", ".jpeg", ".dcm", ".tif", ".tiff", ".bmp"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def run_segment_volume(
    paths: list[Path], *, out: Path, model: str = "default", as_json: bool = False
) -> tuple[dict, str]:
    """Liver masks for MR/CT inputs with the 2D/3D MONAI segmenter.

    * a NIfTI file or DICOM series folder -> ``out`` = ``mask.nii.gz`` (one input) or a folder
      (``<stem>_mask.nii.gz`` per input); the mask keeps the input's grid and affine; JSON gives
      the liver ``volume_ml``.
    * a 2D slice (PNG/JPEG/single-frame DICOM) -> ``out`` is a folder; ``<stem>_mask.png`` uint8 0/255.
    """
    from liverfib.io import read_image
    from liverfib.mri.maskio import write_mask_like
    from liverfib.mri.segmentation import load_seg_model
    from liverfib.mri.shape import liver_volume_ml

    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("No input given; pass a NIfTI volume, a DICOM series folder or a 2D slice")
    out = Path(out)
    out_is_file = out.name.endswith((*_VOLUME_SUFFIXES, ".png"))
    if out_is_file and len(paths) > 1:
        raise ConfigError(f"--out {out} names one file but {len(paths)} inputs were given; pass a folder")
    seg = load_seg_model(model)
    results: list[dict[str, Any]] = []
    for path in paths:
        t0 = time.time()
        image = read_image(path)
        if image.meta.get("is_sequence"):
            raise InputError(f"{path}: a cine/multi-frame sequence, expected an MR/CT volume or slice")
        if image.ndim == 3:
            target = out if out_is_file else out / f"{_stem(path)}_mask.nii.gz"
            if not target.name.endswith(_VOLUME_SUFFIXES):
                raise ConfigError(f"{path} is a volume; --out must end in .nii.gz (or be a folder), got {out}")
        else:
            if out_is_file:
                raise ConfigError(f"{path} is a 2D slice; --out must be a folder (writes <stem>_mask.png), got {out}")
            target = out / f"{_stem(path)}_mask.png"
        mask = seg.segment(image.array)
        write_mask_like(mask, image, target)
        entry: dict[str, Any] = {
            "input": str(path),
            "mask": str(target),
            "kind": "volume" if image.ndim == 3 else "slice",
            "shape": list(image.shape),
            "spacing_mm": list(image.spacing_mm) if image.spacing_mm else None,
            "liver_voxels": int(mask.sum()),
            "seconds": round(time.time() - t0, 2),
        }
        if image.ndim == 3:
            entry["volume_ml"] = round(liver_volume_ml(mask, image.spacing_mm), 2) if image.spacing_mm else None
        else:
            entry["area_mm2"] = (
                round(float(mask.sum() * image.spacing_mm[0] * image.spacing_mm[1]), 1) if image.spacing_mm else None
            )
        results.append(entry)
    summary: dict[str, Any] = {"model": str(model), "model_info": seg.info.get("trained_on"), "results": results}
    if len(results) == 1 and "volume_ml" in results[0]:
        summary["volume_ml"] = results[0]["volume_ml"]
    lines = []
    for r in results:
        what = f"liver {r['volume_ml']} ml" if r.get("volume_ml") is not None else f"{r['liver_voxels']} liver voxels"
        lines.append(f"{r['input']}: {what} -> {r['mask']} ({r['seconds']} s)")
    return summary, "\n".join(lines)


def run_mri_stage(
    exam_dir: Path, *, model: str = "default", seg_model: str = "default", phases: list[str] | None = None
) -> tuple[dict, str]:
    """Fibrosis stage of one multi-phase MRI exam folder (LiQA case layout) with any subset of phases."""
    import numpy as np

    from liverfib.mri.exam import LIQA_PHASES
    from liverfib.mri.layouts import read_liqa_case
    from liverfib.mri.segmentation import load_seg_model
    from liverfib.mri.staging import cumulative_to_stage_probs, load_staging_model
    from liverfib.mri.staging_train import predict_cumulative, prepare_exam

    net, cfg, info = load_staging_model(model)
    exam = read_liqa_case(exam_dir)
    if phases:
        unknown = [p for p in phases if p not in LIQA_PHASES]
        if unknown:
            raise ConfigError(f"Unknown phase(s) {unknown}; valid: {', '.join(LIQA_PHASES)}")
        kept = {p: f for p, f in exam.phase_paths.items() if p in phases}
        if not kept:
            raise InputError(f"{exam_dir}: none of the requested phases {phases} is present (has {list(exam.phases)})")
        exam = replace(exam, phase_paths=kept)
    seg = load_seg_model(seg_model) if exam.mask_path is None else None
    crops, prep = prepare_exam(exam, cfg, seg_model=seg)
    cum, per = predict_cumulative(net, crops.x[None], crops.present[None])
    probs = cumulative_to_stage_probs(cum)[0]
    stage = int(np.argmax(probs)) + 1
    per_phase = {
        p: {"p_s4": round(float(per[0, i, 2]), 4), "p_s2_s4": round(float(per[0, i, 0]), 4)}
        for i, p in enumerate(cfg.phases)
        if crops.present[i]
    }
    summary = {
        "exam": str(exam_dir),
        "p_s4": round(float(cum[0, 2]), 4),
        "p_s2_s4": round(float(cum[0, 0]), 4),
        "stage": f"S{stage}",
        "stage_probs": {f"S{i + 1}": round(float(v), 4) for i, v in enumerate(probs)},
        "phases_used": prep["phases_used"],
        "missing_phases": [p for p in cfg.phases if p not in prep["phases_used"]],
        "reference_phase": prep["reference_phase"],
        "mask_source": prep["mask_source"],
        "per_phase": per_phase,
        "fusion": cfg.fusion,
        "model": str(model),
        "model_trained_on": info.get("data", "unknown"),
    }
    warn = " [model trained on SYNTHETIC data only: not a clinical result]" if "SYNTHETIC" in str(info.get("data", "")) else ""
    text = (
        f"{exam_dir}: stage {summary['stage']}  P(S4)={summary['p_s4']:.2f}  P(S2-S4)={summary['p_s2_s4']:.2f}  "
        f"phases {','.join(prep['phases_used'])} (mask: {prep['mask_source']}){warn}"
    )
    return summary, text


def run_mri_phantom(
    out: Path, *, n_subjects: int = 8, seed: int = 0, p_missing: float = 0.15, size: int = 96, slices: int = 32
) -> tuple[dict, str]:
    """Write a SYNTHETIC multi-phase MRI dataset in the LiQA layout (for demos and tests)."""
    from liverfib.mri.synthetic import SYNTHETIC_NOTE, write_liqa_dataset

    if not 0 <= p_missing < 1:
        raise ConfigError(f"--p-missing must be in [0, 1), got {p_missing}")
    if size < 32 or slices < 8:
        raise ConfigError(f"--size must be >= 32 and --slices >= 8, got {size} and {slices}")
    rows = write_liqa_dataset(out, n_subjects, seed=seed, shape=(slices, size, size), p_missing=p_missing)
    summary = {"out": str(out), "n_subjects": len(rows), "note": SYNTHETIC_NOTE, "subjects": rows}
    return summary, f"wrote {len(rows)} SYNTHETIC LiQA-layout exams to {out} ({SYNTHETIC_NOTE})"


def run_mri_inspect(root: Path, *, labels_csv: Path | None = None) -> tuple[dict, str]:
    """List the exams of a LiQA or CirrMRI600+ root (or one case folder): vendor, stage, phases, missing."""
    from collections import Counter

    from liverfib.mri.layouts import list_cirrmri_exams, list_liqa_exams, read_liqa_case

    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: folder not found")
    names = [d.name for d in root.iterdir()]
    if any(n.startswith("Vendor_") for n in names):
        exams, layout = list_liqa_exams(root), "liqa"
    elif any(n.startswith("Cirrhosis_T") for n in names) or root.name.startswith("Cirrhosis_T"):
        exams, layout = list_cirrmri_exams(root, labels_csv), "cirrmri600"
    else:
        exams, layout = [read_liqa_case(root)], "liqa-case"
    missing = Counter(p for e in exams for p in e.missing_phases)
    summary = {
        "root": str(root),
        "layout": layout,
        "n_exams": len(exams),
        "by_vendor": dict(Counter(str(e.vendor) for e in exams)),
        "by_stage": dict(Counter(str(e.stage) for e in exams)),
        "annotated": sum(e.mask_path is not None for e in exams),
        "missing_phase_counts": dict(missing),
        "exams": [e.summary() for e in exams],
    }
    text = (
        f"{root}: {len(exams)} exams ({layout}); vendors {summary['by_vendor']}; stages {summary['by_stage']}; "
        f"{summary['annotated']} with liver mask; missing phases {dict(missing) or 'none'}"
    )
    return summary, text


def run_mri_train(
    data: Path,
    out: Path,
    *,
    fusion: str = "consensus",
    encoder: str = "small_cnn",
    steps: int = 250,
    cam_weight: float = 0.5,
    val_fraction: float = 0.25,
    seed: int = 0,
    threads: int | None = 1,
) -> tuple[dict, str]:
    """Train the multi-phase staging network on a LiQA-layout root; evaluate on a held-out subject split."""
    import numpy as np

    from liverfib.evaluation.metrics import evaluate_probabilities
    from liverfib.mri.layouts import list_liqa_exams
    from liverfib.mri.staging import StagingConfig, cumulative_to_stage_probs, save_staging_model
    from liverfib.mri.staging_train import predict_cumulative, prepare_exam, stack_crops, train_staging
    from liverfib.report.jsonio import write_json

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    try:
        cfg = StagingConfig(fusion=fusion, encoder=encoder)  # type: ignore[arg-type]
    except Exception as exc:  # pydantic ValidationError
        raise ConfigError(f"invalid staging option: {str(exc).splitlines()[-2].strip()}") from None
    exams = [e for e in list_liqa_exams(data) if e.stage is not None]
    if len(exams) < 8:
        raise InputError(f"{data}: {len(exams)} labelled exams; need at least 8 to train and validate")
    subjects = sorted({e.case_id.split("-")[0] for e in exams})
    rng = np.random.default_rng(seed)
    val_subjects = set(rng.choice(subjects, size=max(2, round(val_fraction * len(subjects))), replace=False).tolist())
    crops = [prepare_exam(e, cfg)[0] for e in exams]
    x, present, liver = stack_crops(crops)
    stages = np.array([e.stage for e in exams])
    is_val = np.array([e.case_id.split("-")[0] in val_subjects for e in exams])
    net, log = train_staging(x[~is_val], present[~is_val], liver[~is_val], stages[~is_val], cfg, steps=steps,
                             cam_weight=cam_weight, seed=seed)
    cum, _ = predict_cumulative(net, x[is_val], present[is_val])
    ids = [e.case_id.split("-")[0] for e, v in zip(exams, is_val, strict=True) if v]
    metrics = evaluate_probabilities([f"F{s}" for s in stages[is_val]], cumulative_to_stage_probs(cum),
                                     ["F1", "F2", "F3", "F4"], groups=ids, n_boot=1000, seed=seed)
    result = {
        "data": str(data), "n_train": int((~is_val).sum()), "n_val": int(is_val.sum()),
        "auc_s4_vs_s1_s3": metrics["auc_f4"], "auc_s4_ci95": metrics["ci95"]["auc_f4"],
        "auc_s2_s4_vs_s1": metrics["auc_ge_f2"], "auc_s2_s4_ci95": metrics["ci95"]["auc_ge_f2"],
        "stage_accuracy": metrics["accuracy"], "stage_accuracy_ci95": metrics["ci95"]["accuracy"],
        "split": "validation subjects (grouped by NNNN id)", "steps": len(log), "config": cfg.model_dump(mode="json"),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "metrics.json")
    save_staging_model(out / "model.pt", net, data=str(data), heldout=result)
    text = (f"trained on {result['n_train']} exams; validation ({result['n_val']}): AUC S4 {result['auc_s4_vs_s1_s3']}, "
            f"AUC S2-S4 {result['auc_s2_s4_vs_s1']} -> {out / 'model.pt'}")
    return result, text


def run_train_seg_mri(
    data_dir: Path,
    *,
    out_dir: Path,
    config: Path | None = None,
    overrides: dict[str, Any] | None = None,
    val_fraction: float = 0.2,
    threads: int | None = 1,
) -> tuple[dict[str, Any], str]:
    """``train-seg --task mri``: the 2D slice-wise MR/CT liver segmenter.

    ``data_dir`` is a folder with ``manifest.csv`` holding ``file,mask[,source,case_id]`` (2D slices,
    like ../shared/data/ct-liver-slices) or ``case_id,image,mask`` (NIfTI volumes, like
    ../shared/data/mr-ct-liver), a CirrMRI600+ root (train/valid scans with masks; grouped by
    subject id, so T1 and T2 of one patient stay together) or a LiQA root (GED4 + mask_GED4). Defaults < YAML ``config`` <
    ``overrides`` (``arch``, ``epochs``, ``batch_size``, ``lr``, ``img_size``, ``seed``, plus YAML-only
    ``n_synthetic`` and ``mean_teacher``). A ``val_fraction`` of the cases (grouped) is held out and
    scored with Dice/HD95 (monai.metrics).
    """
    import csv

    import numpy as np
    import yaml
    from pydantic import BaseModel, ConfigDict, ValidationError

    from liverfib.mri.seg_training import (
        SliceSample,
        slices_from_ct_folder,
        slices_from_synthetic,
        slices_from_volumes,
        train_segmenter,
    )
    from liverfib.mri.segmentation import SegModel, SegModelConfig, dice_hd95, save_seg_model
    from liverfib.report.jsonio import write_json

    class SegTrainConfig(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        arch: str = "unet-lite0"
        img_size: int = 160
        epochs: float | None = None
        steps: int = 300
        batch_size: int = 8
        lr: float = 1e-3
        seed: int = 0
        n_synthetic: int = 0
        mean_teacher: float = 0.0

    values: dict[str, Any] = {}
    if config is not None:
        try:
            values = yaml.safe_load(Path(config).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{config}: cannot read YAML config ({exc})") from None
    values.update(overrides or {})
    try:
        cfg = SegTrainConfig(**values)
        model_cfg = SegModelConfig(arch=cfg.arch, img_size=cfg.img_size)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"invalid mri segmentation option: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}") from None
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    data_dir = Path(data_dir)
    manifest = data_dir / "manifest.csv"
    samples: list[SliceSample]
    if manifest.is_file():
        with manifest.open(newline="") as fh:
            columns = set(csv.DictReader(fh).fieldnames or [])
        if {"file", "mask"} <= columns:
            samples = slices_from_ct_folder(data_dir, cfg.img_size)
        elif {"case_id", "image", "mask"} <= columns:
            samples = slices_from_volumes(data_dir, cfg.img_size)
        else:
            raise InputError(f"{manifest}: expected columns file,mask or case_id,image,mask, found {sorted(columns)}")
    elif any(d.name.startswith("Cirrhosis_T") for d in data_dir.iterdir()) or data_dir.name.startswith("Cirrhosis_T"):
        samples = _cirrmri_slices(data_dir, cfg.img_size)
    else:
        samples = _liqa_slices(data_dir, cfg.img_size)
    if cfg.n_synthetic:
        samples += slices_from_synthetic(cfg.n_synthetic, cfg.img_size, seed=cfg.seed + 1)
    groups = sorted({s.group for s in samples})
    rng = np.random.default_rng(cfg.seed)
    n_val = int(round(val_fraction * len(groups))) if len(groups) > 1 else 0
    val_groups = set(rng.choice(groups, size=n_val, replace=False).tolist()) if n_val else set()
    train = [s for s in samples if s.group not in val_groups]
    steps = cfg.steps if cfg.epochs is None else max(1, int(cfg.epochs * len(train) / cfg.batch_size))
    unlabelled = slices_from_synthetic(8, cfg.img_size, seed=cfg.seed + 2, with_masks=False) if cfg.mean_teacher else []
    net, log = train_segmenter(train, cfg=model_cfg, steps=steps, batch_size=cfg.batch_size, lr=cfg.lr,
                               seed=cfg.seed, unlabelled=unlabelled, mean_teacher_weight=cfg.mean_teacher)
    model = SegModel(net, model_cfg)
    per_case: dict[str, list[float]] = {}
    for s in samples:
        if s.group in val_groups and s.mask is not None:
            d, _ = dice_hd95(model.segment(s.image.astype(np.float32)), s.mask)
            if d is not None:
                per_case.setdefault(s.group, []).append(d)
    case_dice = [float(np.mean(v)) for v in per_case.values()]
    result = {
        "task": "mri", "data": str(data_dir), "n_train_slices": len(train), "n_val_cases": len(val_groups),
        "val_dice_mean": float(np.mean(case_dice)) if case_dice else None,
        "val_unit": "case (mean slice Dice at the model's input size)", "steps": len(log),
        "config": cfg.model_dump(), "weights": "ImageNet lite0 encoder (offline)" if cfg.arch == "unet-lite0" else "random init",
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump()))
    write_json(result, out_dir / "metrics.json")
    save_seg_model(out_dir / "model.pt", net, model_cfg, trained_on=str(data_dir), val_dice_mean=result["val_dice_mean"])
    return result, f"trained {len(log)} steps on {len(train)} slices; val Dice {result['val_dice_mean']} -> {out_dir / 'model.pt'}"


def _cirrmri_slices(root: Path, size: int) -> list[Any]:
    """Slices with masks from a CirrMRI600+ root (``train``/``valid`` scans that have a mask)."""
    from liverfib.mri.exam import read_exam_volumes
    from liverfib.mri.layouts import list_cirrmri_exams
    from liverfib.mri.seg_training import SliceSample, _to_square
    from liverfib.mri.segmentation import normalize_intensity

    out = []
    for exam in list_cirrmri_exams(root):
        if exam.mask_path is None or exam.split == "test":
            continue
        images, mask = read_exam_volumes(exam)
        vol = normalize_intensity(images[exam.phases[0]].array)
        for k in range(vol.shape[0]):
            x, m = _to_square(vol[k], mask.array[k], size)  # type: ignore[union-attr]
            out.append(SliceSample(x.astype("float16"), m, str(exam.meta["subject"]), f"cirrmri-{exam.phases[0]}"))
    if not out:
        raise InputError(f"{root}: no CirrMRI600+ train/valid scans with masks found")
    return out


def _liqa_slices(root: Path, size: int) -> list[Any]:
    """GED4 slices with their mask_GED4 from a LiQA root (annotated cases only)."""
    from liverfib.mri.exam import read_exam_volumes
    from liverfib.mri.layouts import list_liqa_exams
    from liverfib.mri.seg_training import SliceSample, _to_square
    from liverfib.mri.segmentation import normalize_intensity

    out = []
    for exam in list_liqa_exams(root):
        if exam.mask_path is None or "GED4" not in exam.phase_paths:
            continue
        images, mask = read_exam_volumes(exam)
        vol = normalize_intensity(images["GED4"].array)
        for k in range(vol.shape[0]):
            x, m = _to_square(vol[k], mask.array[k], size)  # type: ignore[union-attr]
            out.append(SliceSample(x.astype("float16"), m, exam.case_id.split("-")[0], "liqa"))
    if not out:
        raise InputError(f"{root}: no manifest.csv and no annotated LiQA cases (GED4 + mask_GED4) found")
    return out
