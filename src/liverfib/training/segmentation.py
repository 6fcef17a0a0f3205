"""Training of 2D binary segmenters (ultrasound liver, CAM pseudo-masks).

Images and masks are held in memory at ``S x S`` (the sets are small); each step draws an
augmented batch (albumentations, image and mask jointly), optimises Dice + BCE (MONAI
``DiceCELoss`` with sigmoid) with AdamW and a cosine schedule. Validation Dice is measured at the
original resolution after post-processing, exactly as ``liverfib segment`` produces masks.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
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
    from monai.losses import DiceCELoss

    from liverfib.inference.segmenter import Segmenter
    from liverfib.models.bundle import Bundle, save_bundle
    from liverfib.models.segmentation import build_seg_model, get_seg_spec
    from liverfib.preprocess.augment import build_us_seg_augment
    from liverfib.preprocess.segmentation import SegPreprocess, SegPreprocessConfig, resize_mask
    from liverfib.training.trainer import fit

    if len(images) != len(masks) or not images:
        raise ConfigError(f"need matching images and masks, got {len(images)} and {len(masks)}")
    if cfg.augment not in ("strong", "basic", "none"):
        raise ConfigError(f"augment must be strong, basic or none, got {cfg.augment!r}")
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
    dice_ce = DiceCELoss(sigmoid=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_rows: list[dict[str, Any]] = []
    order = np.array([], int)

    def batches(epoch: int):
        nonlocal order
        for _ in range(steps):
            if order.size < cfg.batch_size:
                order = np.concatenate([order, rng.permutation(len(x_u8))])
            batch, order = order[: cfg.batch_size], order[cfg.batch_size :]
            xs, ys = [], []
            for i in batch:
                img, msk = (x_u8[i], y_u8[i]) if aug is None else aug(x_u8[i], y_u8[i])
                xs.append(pre.normalise(img))
                ys.append((msk > 127).astype(np.float32)[None])
            yield torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))

    def loss_fn(net: Any, batch: Any, state: Any) -> tuple[Any, dict[str, float]]:
        loss = dice_ce(net(batch[0]), batch[1])
        return loss, {"loss": loss.item()}

    def log_epoch(state: Any, logs: dict[str, Any]) -> None:
        losses = [r["loss"] for r in state.rows if r["epoch"] == state.epoch + 1]
        row: dict[str, Any] = {"epoch": state.epoch + 1, "loss": round(float(np.mean(losses)), 4),
                               "seconds": round(state.seconds, 1)}
        log_rows.append(row)
        _write_log(log_rows, out_dir / "log.csv")  # live CSV log, one row per epoch
        if progress is not None:
            progress(state.epoch + 1, cfg.epochs, row)

    t0 = time.time()
    # no validation inside the loop: with a handful of images, selecting on them would tune on them
    fit(net, opt, loss_fn, batches, epochs=cfg.epochs, scheduler=sched, after_epoch=[log_epoch])

    net.eval()
    extra = dict(extra_fields or {})
    fields: dict[str, Any] = {
        "task": "us-liver-seg" if cfg.target == "liver" else "us-cam-seg",
        "network": {"name": cfg.arch, "args": {"arch": cfg.arch, "in_channels": 3}},
        "classes": ["background", cfg.target],
        "preprocessing": SegPreprocessConfig(img_size=cfg.img_size).to_dict(),
        "input": {"size": [cfg.img_size, cfg.img_size], "channels": 3},
        "training_data": {"description": extra.pop("train_data", None), "n_train": len(x_u8)},
        "seed": cfg.seed,
        "synthetic": bool(extra.pop("synthetic", False)),
        "extra": {"threshold": cfg.threshold, "target": cfg.target, "config": cfg.model_dump(mode="json"),
                  "weights_origin": spec.weights if cfg.pretrained else "random", **extra},
    }
    summary: dict[str, Any] = {"epochs": cfg.epochs, "final_loss": log_rows[-1]["loss"],
                               "train_seconds": round(time.time() - t0, 1), "n_train": len(x_u8)}
    if len(val_images):
        in_memory = Bundle(meta=fields, weights=net.state_dict(), source="training")
        scores = evaluate_segmenter(Segmenter(in_memory, "training"), val_images, val_masks)
        summary["val_dice"] = round(float(np.mean([s["dice"] for s in scores])), 4)
        fields["metrics"] = {"split": "val (last epoch, not used for selection)",
                             "values": {"dice_mean": summary["val_dice"]}}
    save_bundle(out_dir / "model", net, **fields)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return summary
