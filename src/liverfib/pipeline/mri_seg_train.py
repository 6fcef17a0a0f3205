"""``train-seg --task mri``: the 2D slice-wise MR/CT liver segmenter, trained on slices from a
manifest folder (2D slices or NIfTI volumes), a CirrMRI600+ root or a LiQA root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError

__all__ = ["run_train_seg_mri"]


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
    import numpy as np
    import yaml

    from liverfib.io.atomic import atomic_write
    from liverfib.io.jsonio import write_json
    from liverfib.models.bundle import save_bundle
    from liverfib.mri.seg_training import slices_from_synthetic
    from liverfib.mri.segmentation import SegModel, seg_bundle_fields

    cfg, model_cfg = _seg_train_config(config, overrides)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    data_dir = Path(data_dir)
    samples = _training_slices(data_dir, cfg.img_size)
    if cfg.n_synthetic:
        samples += slices_from_synthetic(cfg.n_synthetic, cfg.img_size, seed=cfg.seed + 1)
    groups = sorted({s.group for s in samples})
    rng = np.random.default_rng(cfg.seed)
    n_val = int(round(val_fraction * len(groups))) if len(groups) > 1 else 0
    val_groups = set(rng.choice(groups, size=n_val, replace=False).tolist()) if n_val else set()
    train = [s for s in samples if s.group not in val_groups]
    steps = cfg.steps if cfg.epochs is None else max(1, int(cfg.epochs * len(train) / cfg.batch_size))
    unlabelled = slices_from_synthetic(8, cfg.img_size, seed=cfg.seed + 2, with_masks=False) if cfg.mean_teacher else []
    net, log = _train_with_progress(train, model_cfg, cfg, steps, unlabelled)
    case_dice = _mean_overlap_per_case(SegModel(net, model_cfg), samples, val_groups)
    result = {
        "task": "mri", "data": str(data_dir), "n_train_slices": len(train), "n_val_cases": len(val_groups),
        "val_dice_mean": float(np.mean(case_dice)) if case_dice else None,
        "val_unit": "case (mean slice Dice at the model's input size)", "steps": len(log),
        "config": cfg.model_dump(), "weights": "ImageNet lite0 encoder (offline)" if cfg.arch == "unet-lite0" else "random init",
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "config.yaml", data=yaml.safe_dump(cfg.model_dump()))
    write_json(result, out_dir / "metrics.json")
    save_bundle(out_dir / "model", net, **seg_bundle_fields(model_cfg, trained_on=str(data_dir),
                                                           val_dice_mean=result["val_dice_mean"]))
    return result, f"trained {len(log)} steps on {len(train)} slices; val Dice {result['val_dice_mean']} -> {out_dir / 'model'}"


def _seg_train_config(config: Path | None, overrides: dict[str, Any] | None) -> tuple[Any, Any]:
    """Defaults < YAML ``config`` < ``overrides`` -> ``(training options, SegModelConfig)``."""
    import yaml
    from pydantic import BaseModel, ConfigDict, ValidationError

    from liverfib.mri.segmentation import SegModelConfig

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
        return cfg, SegModelConfig(arch=cfg.arch, img_size=cfg.img_size)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"invalid mri segmentation option: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}") from None


def _training_slices(data_dir: Path, size: int) -> list[Any]:
    """Slices with masks from a manifest folder (2D slices or volumes), a CirrMRI600+ or a LiQA root."""
    import csv

    from liverfib.mri.seg_training import slices_from_ct_folder, slices_from_volumes

    manifest = data_dir / "manifest.csv"
    if manifest.is_file():
        with manifest.open(newline="") as fh:
            columns = set(csv.DictReader(fh).fieldnames or [])
        if {"file", "mask"} <= columns:
            return slices_from_ct_folder(data_dir, size)
        if {"case_id", "image", "mask"} <= columns:
            return slices_from_volumes(data_dir, size)
        raise InputError(f"{manifest}: expected columns file,mask or case_id,image,mask, found {sorted(columns)}")
    if any(d.name.startswith("Cirrhosis_T") for d in data_dir.iterdir()) or data_dir.name.startswith("Cirrhosis_T"):
        return _cirrmri_slices(data_dir, size)
    return _liqa_slices(data_dir, size)


def _train_with_progress(train: list[Any], model_cfg: Any, cfg: Any, steps: int, unlabelled: list[Any]) -> tuple[Any, Any]:
    """:func:`~liverfib.mri.seg_training.train_segmenter` with its step log shown on the progress bar."""
    import re

    from liverfib.mri.seg_training import train_segmenter
    from liverfib.progress import Progress

    with Progress(steps, "train-seg mri", "step") as bar:
        def show(message: str) -> None:  # "step 25/300 loss 0.412 (31 s)" every 25 steps
            m = re.match(r"step (\d+)/\d+ loss ([0-9.]+)", message)
            if m:
                bar.set(int(m.group(1)), loss=float(m.group(2)))

        return train_segmenter(train, cfg=model_cfg, steps=steps, batch_size=cfg.batch_size, lr=cfg.lr,
                               seed=cfg.seed, unlabelled=unlabelled, mean_teacher_weight=cfg.mean_teacher, log=show)


def _mean_overlap_per_case(model: Any, samples: list[Any], val_groups: set[str]) -> list[float]:
    """Mean slice Dice per held-out case (slices without liver in both masks do not count)."""
    import numpy as np

    from liverfib.evaluation.segmentation import dice_hd95

    per_case: dict[str, list[float]] = {}
    for s in samples:
        if s.group in val_groups and s.mask is not None:
            d, _ = dice_hd95(model.segment(s.image.astype(np.float32)), s.mask)
            if d is not None:
                per_case.setdefault(s.group, []).append(d)
    return [float(np.mean(v)) for v in per_case.values()]


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
