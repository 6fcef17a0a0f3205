"""Segmentation workflow: ``segment`` (US 2D here; MR/CT volumes delegated to the MRI workflow)
and 2D segmenter training on image/mask pairs (real ultrasound liver masks, CAM pseudo-masks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline._common import collect_files, read_2d_images, unique_stems
from liverfib.pipeline._modality import check_segment_modality

__all__ = ["SEGMENT_MODALITIES", "check_segment_modality", "run_segment", "run_train_seg_2d", "run_train_us_liver", "run_train_cam_us", "run_train_seg"]

SEGMENT_MODALITIES = ("us", "mr", "ct")


def run_segment(
    paths: Sequence[Path],
    *,
    modality: str,
    out: Path,
    model: str = "default",
    batch_size: int = 8,
    series_uid: str | None = None,
    dicom_seg: bool = False,
) -> tuple[dict[str, Any], str]:
    """Liver masks. ``us``: per image ``<stem>_mask.png`` (0/255, input size) and ``<stem>_overlay.png``
    in folder ``out``; area in pixels and, where the spacing is known, mm². ``mr``/``ct``: see
    :func:`liverfib.pipeline.segment_volume.run_segment_volume` (NIfTI mask on the input grid, QC montage PNG,
    optional DICOM SEG). Inputs of another modality (DICOM tag) are refused."""
    if modality not in SEGMENT_MODALITIES:
        from liverfib.errors import unknown_choice

        raise unknown_choice("modality", modality, SEGMENT_MODALITIES)
    if modality in ("mr", "ct"):
        try:
            from liverfib.pipeline.segment_volume import run_segment_volume
        except ImportError:
            raise ConfigError("MR/CT segmentation is not available in this build") from None
        return run_segment_volume(list(paths), out=out, model=model, modality=modality, series_uid=series_uid,
                                  dicom_seg=dicom_seg)
    if dicom_seg or series_uid:
        raise ConfigError("--dicom-seg and --series are for MR/CT series (--modality mr|ct)")
    return _segment_us(paths, out=out, model=model, batch_size=batch_size)


def _segment_us(paths: Sequence[Path], *, out: Path, model: str, batch_size: int) -> tuple[dict[str, Any], str]:
    from liverfib.inference.segmenter import load_segmenter
    from liverfib.io.masks import write_mask_png
    from liverfib.report.overlay import write_mask_overlay

    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out must be a folder for ultrasound masks, found a file")
    good, loaded, errors = read_2d_images(
        collect_files(paths), what="segmented", check=lambda im: check_segment_modality(im, "us")
    )
    segmenter = load_segmenter(model)
    images = list(zip(good, loaded, strict=True))
    out.mkdir(parents=True, exist_ok=True)
    masks = segmenter.predict_arrays([im.array for _, im in images], batch_size=batch_size)
    records = []
    for (f, image), mask, stem in zip(images, masks, unique_stems([f for f, _ in images]), strict=True):
        write_mask_png(mask, out / f"{stem}_mask.png")
        write_mask_overlay(image.array, mask, out / f"{stem}_overlay.png")
        area_px = int(mask.sum())
        sp = image.spacing_mm
        rec: dict[str, Any] = {
            "path": str(f),
            "mask_png": str(out / f"{stem}_mask.png"),
            "overlay_png": str(out / f"{stem}_overlay.png"),
            "area_px": area_px,
            "area_mm2": round(area_px * sp[0] * sp[1], 1) if sp else None,
            "fraction": round(area_px / mask.size, 4),
        }
        if area_px == 0:
            rec["warning"] = "no liver found"
        records.append(rec)
    summary = {"model": segmenter.describe()["name"], "modality": "us", "n": len(records), "images": records,
               "errors": errors}
    lines = [f"{'file':32s} {'area px':>9s} {'area mm2':>9s}"]
    for r in records:
        mm2 = "-" if r["area_mm2"] is None else f"{r['area_mm2']:.0f}"
        lines.append(f"{Path(r['path']).name[:32]:32s} {r['area_px']:9d} {mm2:>9s} {r.get('warning', '')}")
    lines += [f"unreadable: {e['error']}" for e in errors]
    lines.append(f"wrote {len(records)} masks and overlays to {out}")
    return summary, "\n".join(lines)


def run_train_seg_2d(
    data_dir: Path,
    *,
    out_dir: Path,
    target: str,
    config: Path | None = None,
    overrides: dict[str, Any] | None = None,
    val_fraction: float = 0.0,
    threads: int | None = None,
) -> tuple[dict[str, Any], str]:
    """Train a 2D segmenter on an image/mask pair folder (``manifest.csv`` or ``images/`` + ``masks/``).

    With ``val_fraction`` > 0 whole groups (manifest ``subject``: a subject, or a near-duplicate
    cluster for pseudo-masks) are held out and scored at the end (Dice/IoU with 95 % CIs).
    """
    import torch

    from liverfib.io.jsonio import write_json
    from liverfib.io.masks import list_mask_pairs
    from liverfib.pipeline._common import progress_bar
    from liverfib.training.segmentation import SegTrainConfig, train_segmentation

    if threads:
        torch.set_num_threads(threads)
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    cfg = SegTrainConfig.resolve(config, {"target": target, **(overrides or {})})
    pairs = list_mask_pairs(data_dir)
    val_groups = _held_out_groups(sorted({p.group for p in pairs}), val_fraction, cfg.seed)
    train_pairs = [p for p in pairs if p.group not in val_groups]
    val_pairs = [p for p in pairs if p.group in val_groups]
    x, y = _read_pairs(train_pairs)
    bar = progress_bar("train-seg")
    result = train_segmentation(x, y, cfg, out_dir, progress=lambda e, n, r: bar(e, n),
                                extra_fields={"train_data": str(data_dir)})
    summary: dict[str, Any] = {"out": str(out_dir / "model"), "n_train": len(train_pairs), **result}
    if val_pairs:
        summary["validation"] = _score_held_out(out_dir, val_pairs, len(val_groups))
    write_json(summary, out_dir / "train_summary.json")
    text = f"trained {cfg.arch} on {len(train_pairs)} images in {result['train_seconds']:.0f} s -> {out_dir / 'model'}"
    if "validation" in summary:
        v = summary["validation"]
        text += (f"\nheld-out {v['split']}: Dice {v['dice']['mean']:.3f} [{v['dice']['ci95'][0]:.3f}, "
                 f"{v['dice']['ci95'][1]:.3f}], IoU {v['iou']['mean']:.3f}")
    return summary, text


def _held_out_groups(groups: list[str], val_fraction: float, seed: int) -> set[str]:
    """A seeded draw of ``round(val_fraction * len(groups))`` groups; each side must keep one."""
    rng = np.random.default_rng(seed)
    n_val = int(round(val_fraction * len(groups)))
    if val_fraction > 0 and not 1 <= n_val < len(groups):
        raise ConfigError(f"--val-fraction {val_fraction} leaves no group on one side ({len(groups)} groups)")
    return set(rng.choice(groups, size=n_val, replace=False)) if n_val else set()


def _read_pairs(pairs: list[Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Images and their masks (read at each image's shape)."""
    from liverfib.io import read_image
    from liverfib.io.masks import read_mask

    images = [read_image(p.image).array for p in pairs]
    return images, [read_mask(p.mask, shape=im.shape) for p, im in zip(pairs, images, strict=True)]


def _score_held_out(out_dir: Path, val_pairs: list[Any], n_groups: int) -> dict[str, Any]:
    """Dice/IoU with group-bootstrap CIs of the saved model on the held-out pairs."""
    from liverfib.evaluation.segmentation import summarise_overlap
    from liverfib.inference.segmenter import Segmenter
    from liverfib.models.bundle import load_bundle
    from liverfib.training.segmentation import evaluate_segmenter

    vx, vy = _read_pairs(val_pairs)
    seg = Segmenter(load_bundle(out_dir / "model"), str(out_dir))
    scores = evaluate_segmenter(seg, vx, vy)
    return {"split": f"{n_groups} held-out groups ({len(val_pairs)} images)",
            **summarise_overlap(scores, [p.group for p in val_pairs])}


def run_train_us_liver(data_dir: Path, **kwargs: Any) -> tuple[dict[str, Any], str]:
    """``train-seg --task us-liver``: U-Net with the ImageNet lite0 encoder on real liver masks."""
    return run_train_seg_2d(data_dir, target="liver", **kwargs)


def run_train_cam_us(data_dir: Path, **kwargs: Any) -> tuple[dict[str, Any], str]:
    """``train-seg --task cam-us``: MONAI Attention U-Net on CAM pseudo-masks (BCE + Dice)."""
    overrides = {"arch": "attention-unet", "pretrained": False, "augment": "basic", **(kwargs.pop("overrides", None) or {})}
    return run_train_seg_2d(data_dir, target="cam", overrides=overrides, **kwargs)


def _train_seg_mre(data_dir: Path, **kwargs: Any) -> tuple[dict[str, Any], str]:
    from liverfib.pipeline.mre import train_seg_mre

    return train_seg_mre(data_dir, **kwargs)


def _train_seg_mri(data_dir: Path, **kwargs: Any) -> tuple[dict[str, Any], str]:
    from liverfib.pipeline.mri_seg_train import run_train_seg_mri

    return run_train_seg_mri(data_dir, **kwargs)


#: registry task -> its training function, each called as
#: ``fn(data_dir, out_dir=..., config=..., overrides={...}, val_fraction=..., threads=...)``
SEG_TRAINERS: dict[str, Callable[..., tuple[dict[str, Any], str]]] = {
    "us-liver-seg": run_train_us_liver,
    "us-cam-seg": run_train_cam_us,
    "mre-seg": _train_seg_mre,
    "mri-seg": _train_seg_mri,
}


def run_train_seg(task: str, data_dir: Path, **kwargs: Any) -> tuple[dict[str, Any], str]:
    """``train-seg --task NAME``: the registry task behind NAME, trained by its function above."""
    from liverfib.models.tasks import task_for_train_name

    return SEG_TRAINERS[task_for_train_name(task).name](data_dir, **kwargs)
