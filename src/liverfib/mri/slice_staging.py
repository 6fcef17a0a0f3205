"""Per-slice staging of one MRI sequence (CirrMRI600+ T1 or T2; CirrhosisStage-style, 3 grades).

Each scan gives ``S`` liver-masked 2.5D slices ``(S, 3, N, N)``: three adjacent axial slices as
channels, cut by :func:`liverfib.mri.crops.crops_from_arrays` (liver bounding square, intensity
window from the liver, outside the dilated liver set to 0). A 2D encoder from
:mod:`liverfib.mri.encoders`, global average pooling and a linear head give logits ``(B, K)`` over
the grades (``mild, moderate, severe``). A scan's probabilities are the mean of its slice
probabilities; CirrMRI600+ has one scan per patient and sequence, so scan level = patient level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from liverfib.errors import InputError
from liverfib.mri.crops import crops_from_arrays
from liverfib.mri.encoders import EncoderName, build_encoder
from liverfib.mri.exam import LIQA_PHASES, MriExam, read_exam_volumes

__all__ = ["CIRRMRI_CLASSES", "SliceStagingConfig", "ScanSlices", "build_slice_net", "scan_slices",
           "train_slice_staging", "predict_slice_probs", "average_by_group"]

#: CirrMRI600+ radiological evaluation 1, 2, 3 -> class names, in order.
CIRRMRI_CLASSES: tuple[str, ...] = ("mild", "moderate", "severe")


class SliceStagingConfig(BaseModel):
    """Model + preprocessing of the per-slice staging network (saved in every checkpoint).

    ``layout`` tells a checkpoint of this network from a LiQA multi-phase one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    layout: Literal["cirrmri"] = "cirrmri"
    sequence: Literal["T1", "T2"] = "T1"
    classes: tuple[str, ...] = CIRRMRI_CLASSES
    encoder: EncoderName = "small_cnn"
    n_slices: int = Field(16, ge=1, le=128)
    crop_size: int = Field(64, ge=32, le=256)
    mask_input: bool = True
    width: int = Field(16, ge=4, le=128)


def build_slice_net(cfg: SliceStagingConfig, *, pretrained: bool = False) -> Any:
    """``(B, 3, N, N)`` -> ``{"logits": (B, K)}`` (torch ``nn.Module`` with ``config()``)."""
    import torch
    from torch import nn

    class SliceNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = build_encoder(cfg.encoder, width=cfg.width, pretrained=pretrained)
            self.dropout = nn.Dropout(0.2)
            self.head = nn.Linear(self.encoder.out_channels, len(cfg.classes))

        def config(self) -> dict[str, Any]:
            return cfg.model_dump(mode="json")

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            feat = self.encoder(x).mean(dim=(2, 3))
            return {"logits": self.head(self.dropout(feat))}

    return SliceNet()


@dataclass(frozen=True)
class ScanSlices:
    """The staging input of one scan: ``x (S, 3, N, N)`` float16 in [0, 1], ``slice_index (S,)``
    (axial index of each centre slice, distinct), and where the liver mask came from."""

    x: np.ndarray
    slice_index: np.ndarray
    mask_source: str


def scan_slices(exam: MriExam, cfg: SliceStagingConfig, *, seg_model: Any = None) -> ScanSlices:
    """Read a one-sequence exam, take its liver mask (the annotation, else ``seg_model.segment`` of the
    volume) and cut ``cfg.n_slices`` evenly spaced 2.5D liver slices (duplicates dropped)."""
    images, mask = read_exam_volumes(exam)
    image = images[exam.phases[0]]
    if mask is not None:
        liver, source = mask.array, "annotation"
    else:
        if seg_model is None:
            raise InputError(f"{exam.phase_paths[exam.phases[0]]}: no liver mask and no segmenter given "
                             "(pass seg_model, e.g. the shipped MR/CT liver segmenter)")
        liver, source = seg_model.segment(image.array), "segmentation"
        if not liver.any():
            raise InputError(f"{exam.phase_paths[exam.phases[0]]}: the segmenter found no liver; pass a liver mask")
    crops = crops_from_arrays({cfg.sequence: image.array}, liver, n_stacks=cfg.n_slices, size=cfg.crop_size,
                              mask_input=cfg.mask_input)
    index, first = np.unique(crops.slice_index, return_index=True)
    x = crops.x[LIQA_PHASES.index(cfg.sequence)][first]
    return ScanSlices(x.astype(np.float16), index, source)


def predict_slice_probs(net: Any, x: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Softmax probabilities ``(N, K)`` for slices ``x (N, 3, n, n)``."""
    import torch

    out = []
    net.eval()
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            logits = net(torch.from_numpy(x[i : i + batch_size].astype(np.float32)))["logits"]
            out.append(torch.softmax(logits, dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def average_by_group(probs: np.ndarray, groups: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Mean probability per group (first-appearance order): ``(keys, (G, K))``."""
    keys = list(dict.fromkeys(groups))
    index = {k: i for i, k in enumerate(keys)}
    g = np.array([index[k] for k in groups])
    sums = np.zeros((len(keys), probs.shape[1]))
    np.add.at(sums, g, probs)
    return keys, sums / np.bincount(g, minlength=len(keys))[:, None]


def _augmented_slices(rng: np.random.Generator, x: np.ndarray, max_shift_px: int) -> np.ndarray:
    """A float32 copy of slices ``x (B, 3, n, n)``, each rolled by up to ``max_shift_px`` and scaled by 0.9-1.1."""
    xb = x.astype(np.float32)
    for i in range(len(xb)):
        dy, dx = rng.integers(-max_shift_px, max_shift_px + 1, 2)
        xb[i] = np.roll(xb[i], (int(dy), int(dx)), axis=(-2, -1))
    xb *= rng.uniform(0.9, 1.1, (len(xb), 1, 1, 1)).astype(np.float32)
    return xb


def _class_balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Sampling probability per slice, proportional to 1 / its class count (sums to 1)."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    weight = 1.0 / np.maximum(counts[y], 1)
    return weight / weight.sum()


def _reporter(progress: Callable[[int, str], None] | None, eval_every: int) -> Callable[[Any, dict[str, float]], None]:
    """``fit``'s after-validation hook: ``progress(step, message)`` with the recent loss and the validation scores."""

    def report(state: Any, logs: dict[str, float]) -> None:
        if progress is not None:
            progress(state.step, f"loss {np.mean([r['loss'] for r in state.rows[-eval_every:]]):.3f} "
                                 f"val acc {logs['val_accuracy']:.3f} log-loss {logs['val_log_loss']:.3f}")

    return report


def _validation_score(p: np.ndarray, y_val: np.ndarray) -> tuple[tuple[float, float], dict[str, float]]:
    """Validation slice accuracy (ties: lower log-loss) selects the step: ``(score, logs)``."""
    acc = float((p.argmax(1) == y_val).mean())
    nll = float(-np.log(np.clip(p[np.arange(len(y_val)), y_val], 1e-7, 1)).mean())
    return (acc, -nll), {"val_accuracy": acc, "val_log_loss": nll}


def train_slice_staging(
    x: np.ndarray,
    y: np.ndarray,
    cfg: SliceStagingConfig,
    *,
    x_val: np.ndarray,
    y_val: np.ndarray,
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 2e-3,
    eval_every: int = 25,
    max_shift_px: int = 3,
    seed: int = 0,
    progress: Callable[[int, str], None] | None = None,
    time_limit_s: float | None = None,
) -> tuple[Any, list[dict[str, float]], dict[str, float]]:
    """Train on slices ``x (N, 3, n, n)`` with class indices ``y (N,)``; select on the validation slices.

    Batches are class-balanced (each slice drawn with probability proportional to 1 / its class
    count), slices are shifted by up to ``max_shift_px`` and scaled in intensity by 0.9-1.1. Every
    ``eval_every`` steps (and at the end) the validation slices are scored; the weights with the
    highest validation slice accuracy (ties: lower log-loss) are returned, with the log rows and the
    selected step's validation scores. ``progress(step, message)`` is called after each validation.
    """
    import torch
    import torch.nn.functional as F

    from liverfib.training.trainer import fit

    if len(x) == 0 or len(x_val) == 0:
        raise InputError(f"need training and validation slices, got {len(x)} and {len(x_val)}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_slice_net(cfg, pretrained=cfg.encoder != "small_cnn")
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    weight = _class_balanced_weights(y, len(cfg.classes))

    def batches(epoch: int):
        for _ in range(steps):
            idx = rng.choice(len(x), size=min(batch_size, len(x)), replace=False, p=weight)
            xb = _augmented_slices(rng, x[idx], max_shift_px)
            yield torch.from_numpy(xb), torch.from_numpy(y[idx].astype(np.int64))

    def loss_fn(net: Any, batch: Any, state: Any) -> tuple[Any, dict[str, float]]:
        loss = F.cross_entropy(net(batch[0])["logits"], batch[1], label_smoothing=0.05)
        return loss, {"loss": loss.item()}

    def validate(net: Any, state: Any) -> tuple[tuple[float, float], dict[str, float]]:
        return _validation_score(predict_slice_probs(net, x_val), y_val)

    state = fit(net, opt, loss_fn, batches, scheduler=sched, validate=validate, validate_every=eval_every,
                time_limit_s=time_limit_s, after_validation=[_reporter(progress, eval_every)])
    rows = [{k: r[k] for k in ("step", "loss", "seconds", "val_accuracy", "val_log_loss") if k in r} for r in state.rows]
    acc, neg_nll = state.best_score
    best = {"val_accuracy": acc, "val_log_loss": -neg_nll, "step": state.best_step}
    return net.eval(), rows, best
