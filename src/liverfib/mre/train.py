"""Train an MRE liver segmentation model on labelled exams (phantoms or real, same layout).

A training folder holds one sub-folder per exam: the DICOM series plus ``truth.json`` whose
``liver_mask_path`` names a ``(D, H, W)`` NIfTI mask (what ``liverfib phantom mre`` writes). Exams,
not slices, are split into train/val.

Defaults are the published settings (512 x 512 bilinear resize, BCEWithLogitsLoss, SGD lr 0.005,
momentum 0.982, weight decay 4.457e-6, batch 32, 32 epochs, ResNeXt50-32x4d U-Net);
``configs/mre_seg_phantom.yaml`` is the reduced CPU setting used for the shipped model.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from liverfib.errors import ConfigError, InputError

__all__ = ["SegTrainConfig", "load_labelled_exams", "train_mre_segmentation"]


class SegTrainConfig(BaseModel):
    """Training settings; defaults = the published ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "unet_resnext50"
    img_size: int = Field(512, ge=32)
    loss: Literal["bce_with_logits"] = "bce_with_logits"
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.005, gt=0)
    momentum: float = Field(0.982, ge=0, lt=1)
    weight_decay: float = Field(4.457e-6, ge=0)
    batch_size: int = Field(32, ge=1)
    epochs: int = Field(32, ge=1)
    val_fraction: float = Field(0.2, ge=0, lt=1)
    hflip: bool = False
    intensity_aug: bool = False
    seed: int = 0
    threads: int | None = Field(None, ge=1)
    max_exams: int | None = Field(None, ge=1)


def load_labelled_exams(data_dir: Path, max_exams: int | None = None) -> list[dict[str, Any]]:
    """Read every exam sub-folder with a ``truth.json``: network input, mask and stage."""
    from liverfib.io.nifti import read_nifti
    from liverfib.mre.dicom import read_mre_exam
    from liverfib.mre.segment import prepare_input

    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: expected a folder of exam sub-folders (from 'liverfib phantom mre')")
    dirs = sorted(p.parent for p in data_dir.glob("*/truth.json"))
    if not dirs:
        found = ", ".join(sorted(p.name for p in data_dir.iterdir())[:5]) or "nothing"
        raise InputError(f"{data_dir}: no exam sub-folder holds a truth.json (found {found}); "
                         "generate phantoms with 'liverfib phantom mre --out DIR'")
    exams = []
    for d in dirs[:max_exams]:
        truth = json.loads((d / "truth.json").read_text())
        if "liver_mask_path" not in truth:
            raise InputError(f"{d / 'truth.json'}: no 'liver_mask_path' key")
        exam = read_mre_exam(d)
        mask = read_nifti(d / truth["liver_mask_path"]).array.astype(bool)
        mag = exam.magnitude.array if exam.magnitude is not None else None
        x = prepare_input(mag)
        if mask.shape != x[:, 0].shape:
            raise InputError(f"{d}: liver mask {mask.shape} does not match the exam {x[:, 0].shape}")
        # phantoms (liverfib phantom mre) record the stage they were generated for
        synthetic = bool(truth.get("synthetic", "intended_stage" in truth))
        exams.append({"id": d.name, "dir": d, "x": x, "mask": mask, "stage": truth.get("stage"),
                      "synthetic": synthetic})
    return exams


def _split(exams: list[dict[str, Any]], val_fraction: float, seed: int) -> tuple[list, list]:
    """Exam-level split, stratified by stage where stages are known."""
    rng = np.random.default_rng(seed)
    by_stage: dict[Any, list[int]] = {}
    for i, e in enumerate(exams):
        by_stage.setdefault(e["stage"], []).append(i)
    val: set[int] = set()
    for idx in by_stage.values():
        idx = list(rng.permutation(idx))
        val.update(idx[: int(round(val_fraction * len(idx)))])
    return [e for i, e in enumerate(exams) if i not in val], [e for i, e in enumerate(exams) if i in val]


def _augment_intensity(x: Any, gen: Any) -> Any:
    """Random smooth bias field (linear + quadratic), gamma 0.7-1.4 and Gaussian noise on ``(B, C, H, W)``."""
    import torch

    b, _, h, w = x.shape
    yy = torch.linspace(-1, 1, h).view(1, 1, h, 1)
    xx = torch.linspace(-1, 1, w).view(1, 1, 1, w)
    c = (torch.rand(b, 5, generator=gen) - 0.5).view(b, 5, 1, 1)
    bias = (1 + 0.5 * c[:, 0:1] * yy + 0.4 * c[:, 1:2] * xx + 0.6 * c[:, 2:3] * yy**2
            + 0.4 * c[:, 3:4] * xx**2).clamp(0.4, 2.0)
    gamma = 0.7 + 0.7 * torch.rand(b, 1, 1, 1, generator=gen)
    noise = 0.05 * torch.rand(b, 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
    return ((x.clamp(min=0) ** gamma) * bias + noise).clamp(0, 2.0)


def _predict(net: Any, x: np.ndarray, img_size: int) -> np.ndarray:
    from liverfib.mre.segment import segment_liver

    net.eval()
    return segment_liver(net, {"img_size": img_size}, x)


def evaluate_exams(net: Any, exams: list[dict[str, Any]], img_size: int) -> list[dict[str, Any]]:
    from liverfib.evaluation.segmentation import overlap_scores

    rows = []
    for e in exams:
        pred = _predict(net, e["x"], img_size)
        rows.append({"exam": e["id"], "stage": e["stage"], **overlap_scores(pred, e["mask"])})
    return rows


def _check(config: SegTrainConfig) -> None:
    from liverfib.mre.models import SEG_MODELS

    if config.model not in SEG_MODELS:
        from liverfib.errors import unknown_choice

        raise unknown_choice("segmentation model", config.model, SEG_MODELS)
    if config.img_size % 32:
        raise ConfigError(f"img_size must be a multiple of 32, got {config.img_size}")


def _tensors(train: list[dict[str, Any]], size: int) -> tuple[Any, Any]:
    """Training slices ``(N, C, size, size)`` and masks ``(N, 1, size, size)``, bilinear resize."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.concatenate([e["x"] for e in train]))
    y = torch.from_numpy(np.concatenate([e["mask"] for e in train]).astype(np.float32))[:, None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = (F.interpolate(y, size=(size, size), mode="bilinear", align_corners=False) > 0.5).float()
    return x, y


def _optimizer(net: Any, config: SegTrainConfig) -> Any:
    import torch

    params = [p for p in net.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def _batch_source(x: Any, y: Any, config: SegTrainConfig, gen: Any):  # type: ignore[no-untyped-def]
    """``batches(epoch)`` for :func:`fit`: shuffled, optionally flipped and intensity-augmented."""
    import torch

    def batches(epoch: int):  # type: ignore[no-untyped-def]
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), config.batch_size):
            idx = perm[i : i + config.batch_size]
            xb, yb = x[idx], y[idx]
            if config.hflip and torch.rand(1, generator=gen).item() < 0.5:
                xb, yb = xb.flip(-1), yb.flip(-1)
            if config.intensity_aug:
                xb = _augment_intensity(xb, gen)
            yield xb, yb

    return batches


def _hooks(val: list[dict[str, Any]], n_train: int, size: int, epochs: int, log: list[dict[str, Any]],
           progress: Any) -> tuple[Any, Any]:
    """``validate`` and ``log_epoch`` hooks for :func:`fit`; rows are appended to ``log``."""

    def validate(net: Any, state: Any) -> tuple[float, dict[str, float]]:
        # the best epoch is picked on the validation exams (on -train loss when there are none)
        if val:
            dice = float(np.mean([r["dice"] for r in evaluate_exams(net, val, size)]))
            return dice, {"val_dice": dice}
        rows = [r for r in state.rows if r["epoch"] == state.epoch + 1]
        return -sum(r["loss"] * r["n"] for r in rows) / n_train, {}

    def log_epoch(state: Any, logs: dict[str, Any]) -> None:
        rows = [r for r in state.rows if r["epoch"] == state.epoch + 1]
        row: dict[str, Any] = {"epoch": state.epoch + 1, "train_loss": sum(r["loss"] * r["n"] for r in rows) / n_train,
                               "seconds": round(state.seconds, 1), **logs}
        if state.best_step == state.step:
            row["best"] = True
        log.append(row)
        if progress is not None:
            progress(state.epoch + 1, epochs)

    return validate, log_epoch


def _write_outputs(out_dir: Path, net: Any, config: SegTrainConfig, in_channels: int, metrics: dict[str, Any],
                   synthetic: bool, log: list[dict[str, Any]]) -> None:
    """The bundle ``best/``, ``log.csv`` and ``metrics.json``."""
    from liverfib.io.jsonio import write_json
    from liverfib.models.bundle import save_bundle
    from liverfib.mre.models import seg_bundle_fields

    save_bundle(out_dir / "best", net, **seg_bundle_fields(
        model=config.model, in_channels=in_channels, img_size=config.img_size, train_config=config.model_dump(),
        metrics={"val_dice_mean": metrics["val_dice_mean"], "n_train_exams": metrics["n_train_exams"]},
        synthetic=synthetic))
    with (out_dir / "log.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["epoch", "train_loss", "val_dice", "seconds", "best"])
        w.writeheader()
        w.writerows(log)
    write_json(metrics, out_dir / "metrics.json")


def train_mre_segmentation(
    data_dir: Path, out_dir: Path, config: SegTrainConfig, *, progress=None  # type: ignore[no-untyped-def]
) -> dict[str, Any]:
    """Train, keep the best-val-Dice weights, write the bundle ``best/``, ``config.yaml``, ``log.csv``, ``metrics.json``."""
    import torch
    import yaml

    from liverfib.mre.models import create_seg_model
    from liverfib.training.trainer import fit

    _check(config)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    exams = load_labelled_exams(data_dir, config.max_exams)
    train, val = _split(exams, config.val_fraction, config.seed)
    if not train:
        raise InputError(f"{data_dir}: no exam left for training after the {config.val_fraction:g} val split")
    size = config.img_size
    x, y = _tensors(train, size)
    net = create_seg_model(config.model, in_channels=int(x.shape[1]))
    opt = _optimizer(net, config)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(), sort_keys=False))
    gen = torch.Generator().manual_seed(config.seed)
    log: list[dict[str, Any]] = []

    def step_loss(net: Any, batch: Any, state: Any) -> tuple[Any, dict[str, float]]:
        loss = loss_fn(net(batch[0]), batch[1])
        return loss, {"loss": float(loss.detach()), "n": len(batch[0])}

    validate, log_epoch = _hooks(val, len(x), size, config.epochs, log, progress)
    t0 = time.time()
    fit(net, opt, step_loss, _batch_source(x, y, config, gen), epochs=config.epochs, validate=validate,
        after_epoch=[log_epoch])
    val_rows = evaluate_exams(net, val, size) if val else []
    metrics = {
        "model": config.model,
        "n_train_exams": len(train),
        "n_val_exams": len(val),
        "n_train_slices": int(len(x)),
        "val_dice_mean": float(np.mean([r["dice"] for r in val_rows])) if val_rows else None,
        "val_exams": val_rows,
        "train_seconds": round(time.time() - t0, 1),
        "device": "cpu",
        "init": "random (no pretrained weights)",
    }
    _write_outputs(out_dir, net, config, int(x.shape[1]), metrics, all(e["synthetic"] for e in exams), log)
    metrics["log"] = log
    return metrics
