"""Training of 2D binary segmenters (ultrasound liver, CAM pseudo-masks).

Images and masks are held in memory at ``S x S`` (the sets are small); each step draws an
augmented batch (albumentations, image and mask jointly), optimises Dice + BCE (MONAI
``DiceCELoss`` with sigmoid) with AdamW and a cosine schedule. Validation Dice is measured at the
original resolution after post-processing, exactly as ``liverfib segment`` produces masks.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from liverfib.config import ResolvableConfig
from liverfib.errors import ConfigError

__all__ = ["SegTrainConfig", "train_segmentation", "evaluate_segmenter"]


class SegTrainConfig(ResolvableConfig):
    """Resolved segmentation training configuration; saved in the checkpoint."""

    arch: str = "unet-lite0"
    pretrained: bool = True
    img_size: int = 256
    epochs: int = Field(40, ge=1)
    steps_per_epoch: int = Field(0, ge=0)  # 0: one pass over the training images
    batch_size: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    encoder_lr_factor: float = Field(0.3, gt=0, le=1)  # pretrained encoders learn slower
    weight_decay: float = Field(1e-4, ge=0)
    augment: str = "strong"  # strong | basic | none
    threshold: float = Field(0.5, gt=0, lt=1)
    target: str = "liver"
    seed: int = 0


def _param_groups(net: Any, cfg: SegTrainConfig) -> list[dict[str, Any]]:
    enc = getattr(net, "encoder", None)
    if enc is None or not cfg.pretrained:
        return [{"params": list(net.parameters()), "lr": cfg.lr}]
    enc_ids = {id(p) for p in enc.parameters()}
    rest = [p for p in net.parameters() if id(p) not in enc_ids]
    return [{"params": list(enc.parameters()), "lr": cfg.lr * cfg.encoder_lr_factor}, {"params": rest, "lr": cfg.lr}]


def _write_log(rows: list[dict[str, Any]], path: Path) -> None:
    from liverfib.io.atomic import atomic_write

    with atomic_write(path) as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def evaluate_segmenter(segmenter: Any, arrays: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> list[dict]:
    """Per-image Dice/IoU of ``segmenter`` at the original resolution (post-processed masks)."""
    from liverfib.evaluation.segmentation import overlap_scores

    preds = segmenter.predict_arrays(list(arrays))
    return [overlap_scores(p, m) for p, m in zip(preds, masks, strict=True)]


def train_segmentation(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    cfg: SegTrainConfig,
    out_dir: Path,
    *,
    val_images: Sequence[np.ndarray] = (),
    val_masks: Sequence[np.ndarray] = (),
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    extra_fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on gray ``(H, W)`` images with bool masks; write the bundle ``model/``, ``log.csv``, ``config.yaml``.

    Returns a summary with the final training loss and, when validation pairs are given, their
    mean Dice at the last epoch (no checkpoint selection on them: with a handful of images,
    picking the best epoch on the validation pairs would tune on them).
    """
    import torch
    import yaml

    from liverfib.models.bundle import save_bundle
    from liverfib.models.segmentation import build_seg_model, get_seg_spec
    from liverfib.preprocess.augment import build_us_seg_augment
    from liverfib.preprocess.segmentation import SegPreprocess, SegPreprocessConfig, resize_mask
    from liverfib.training.trainer import fit

    _check_inputs(images, masks, cfg)
    spec = get_seg_spec(cfg.arch)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    pre = SegPreprocess(SegPreprocessConfig(img_size=cfg.img_size))
    x_u8 = [pre.geometry(a) for a in images]
    y_u8 = [resize_mask(m, cfg.img_size) for m in masks]
    aug = None if cfg.augment == "none" else build_us_seg_augment(cfg.seed, strong=cfg.augment == "strong")

    net = build_seg_model(cfg.arch, pretrained=cfg.pretrained)
    opt = torch.optim.AdamW(_param_groups(net, cfg), weight_decay=cfg.weight_decay)
    steps = cfg.steps_per_epoch or max(1, int(np.ceil(len(x_u8) / cfg.batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=cfg.epochs * steps, pct_start=0.1
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    log_rows: list[dict[str, Any]] = []
    t0 = time.time()
    # no validation inside the loop: with a handful of images, selecting on them would tune on them
    fit(net, opt, _overlap_loss(), _batch_sampler(x_u8, y_u8, pre, aug, rng, steps, cfg.batch_size),
        epochs=cfg.epochs, scheduler=sched, after_epoch=[_epoch_logger(log_rows, out_dir, progress, cfg.epochs)])

    net.eval()
    fields = _bundle_fields(cfg, spec, dict(extra_fields or {}), len(x_u8))
    summary: dict[str, Any] = {"epochs": cfg.epochs, "final_loss": log_rows[-1]["loss"],
                               "train_seconds": round(time.time() - t0, 1), "n_train": len(x_u8)}
    if len(val_images):
        summary["val_dice"] = _validation_overlap(net, fields, val_images, val_masks)
        fields["metrics"] = {"split": "val (last epoch, not used for selection)",
                             "values": {"dice_mean": summary["val_dice"]}}
    save_bundle(out_dir / "model", net, **fields)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return summary


def _check_inputs(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], cfg: SegTrainConfig) -> None:
    if len(images) != len(masks) or not images:
        raise ConfigError(f"need matching images and masks, got {len(images)} and {len(masks)}")
    if cfg.augment not in ("strong", "basic", "none"):
        raise ConfigError(f"augment must be strong, basic or none, got {cfg.augment!r}")


def _batch_sampler(
    x_u8: list[np.ndarray], y_u8: list[np.ndarray], pre: Any, aug: Any, rng: np.random.Generator, steps: int,
    batch_size: int,
) -> Callable[[int], Iterator[tuple[Any, Any]]]:
    """``batches(epoch)`` for :func:`fit`: ``steps`` augmented batches ``(x (B, 3, S, S), y (B, 1, S, S))``
    per epoch, walking through shuffled passes over the images (a pass continues into the next epoch)."""
    import torch

    order = np.array([], int)

    def batches(epoch: int) -> Iterator[tuple[Any, Any]]:
        nonlocal order
        for _ in range(steps):
            if order.size < batch_size:
                order = np.concatenate([order, rng.permutation(len(x_u8))])
            batch, order = order[:batch_size], order[batch_size:]
            xs, ys = [], []
            for i in batch:
                img, msk = (x_u8[i], y_u8[i]) if aug is None else aug(x_u8[i], y_u8[i])
                xs.append(pre.normalise(img))
                ys.append((msk > 127).astype(np.float32)[None])
            yield torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))

    return batches


def _overlap_loss() -> Callable[[Any, Any, Any], tuple[Any, dict[str, float]]]:
    """``loss_fn`` for :func:`fit`: Dice + BCE on the logits (MONAI ``DiceCELoss``, sigmoid)."""
    from monai.losses import DiceCELoss

    dice_ce = DiceCELoss(sigmoid=True)

    def loss_fn(net: Any, batch: Any, state: Any) -> tuple[Any, dict[str, float]]:
        loss = dice_ce(net(batch[0]), batch[1])
        return loss, {"loss": loss.item()}

    return loss_fn


def _epoch_logger(
    log_rows: list[dict[str, Any]], out_dir: Path, progress: Callable[[int, int, dict[str, float]], None] | None,
    epochs: int,
) -> Callable[[Any, dict[str, Any]], None]:
    """An ``after_epoch`` hook: mean epoch loss into ``log_rows`` and the live ``out_dir/log.csv``."""

    def log_epoch(state: Any, logs: dict[str, Any]) -> None:
        losses = [r["loss"] for r in state.rows if r["epoch"] == state.epoch + 1]
        row: dict[str, Any] = {"epoch": state.epoch + 1, "loss": round(float(np.mean(losses)), 4),
                               "seconds": round(state.seconds, 1)}
        log_rows.append(row)
        _write_log(log_rows, out_dir / "log.csv")  # live CSV log, one row per epoch
        if progress is not None:
            progress(state.epoch + 1, epochs, row)

    return log_epoch


def _bundle_fields(cfg: SegTrainConfig, spec: Any, extra: dict[str, Any], n_train: int) -> dict[str, Any]:
    """The bundle fields of a trained segmenter (``extra`` may carry ``train_data`` and ``synthetic``)."""
    from liverfib.preprocess.segmentation import SegPreprocessConfig

    return {
        "task": "us-liver-seg" if cfg.target == "liver" else "us-cam-seg",
        "network": {"name": cfg.arch, "args": {"arch": cfg.arch, "in_channels": 3}},
        "classes": ["background", cfg.target],
        "preprocessing": SegPreprocessConfig(img_size=cfg.img_size).to_dict(),
        "input": {"size": [cfg.img_size, cfg.img_size], "channels": 3},
        "training_data": {"description": extra.pop("train_data", None), "n_train": n_train},
        "seed": cfg.seed,
        "synthetic": bool(extra.pop("synthetic", False)),
        "extra": {"threshold": cfg.threshold, "target": cfg.target, "config": cfg.model_dump(mode="json"),
                  "weights_origin": spec.weights if cfg.pretrained else "random", **extra},
    }


def _validation_overlap(net: Any, fields: dict[str, Any], val_images: Sequence[np.ndarray], val_masks: Sequence[np.ndarray]) -> float:
    """Mean Dice of the trained net on the validation pairs, through the same Segmenter as inference."""
    from liverfib.inference.segmenter import Segmenter
    from liverfib.models.bundle import Bundle

    in_memory = Bundle(meta=fields, weights=net.state_dict(), source="training")
    scores = evaluate_segmenter(Segmenter(in_memory, "training"), val_images, val_masks)
    return round(float(np.mean([s["dice"] for s in scores])), 4)
