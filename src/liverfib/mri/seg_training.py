"""Training data and loop for the 2D (slice-wise) liver segmenter; optional mean-teacher.

Samples are axial slices ``(S, S)`` (or 2.5D stacks ``(C, S, S)``, slices k-1, k, k+1) in [0, 1]
with a 0/1 mask, each tagged with a ``group``
(subject/scan) so that splits never put one volume in both train and test.

Sources: ``ct-liver-slices`` (2D PNG + mask, manifest.csv), ``mr-ct-liver`` (NIfTI volumes + liver
masks, manifest.csv) and SYNTHETIC LiQA-like MR volumes from :mod:`liverfib.mri.synthetic`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import InputError
from liverfib.mri.segmentation import (
    SegModelConfig,
    build_seg_net,
    context_stack,
    input_intensity,
    normalize_intensity,
)

__all__ = ["SliceSample", "slices_from_ct_folder", "slices_from_volumes", "slices_from_synthetic", "train_segmenter"]


@dataclass(frozen=True)
class SliceSample:
    """One training slice: image ``(S, S)`` or ``(C, S, S)`` float16 in [0, 1], mask ``(S, S)`` uint8 (or None)."""

    image: np.ndarray
    mask: np.ndarray | None
    group: str
    source: str


def _to_square(image: np.ndarray, mask: np.ndarray | None, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    import cv2

    if image.ndim == 3:  # (C, h, w) 2.5D stack: square each channel
        chans = [_to_square(c, None, size)[0] for c in image]
        return np.stack(chans), (None if mask is None else _to_square(image[0], mask, size)[1])
    h, w = image.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    img = np.zeros((side, side), np.float32)
    img[top : top + h, left : left + w] = image
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    if mask is None:
        return img, None
    m = np.zeros((side, side), np.uint8)
    m[top : top + h, left : left + w] = mask
    return img, cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)


def slices_from_ct_folder(root: str | Path, size: int) -> list[SliceSample]:
    """``ct-liver-slices``: every PNG pair from ``manifest.csv`` (group = source/case_id)."""
    from liverfib.io import read_image

    root = Path(root)
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise InputError(f"{root}: expected manifest.csv with file,mask,source,case_id columns")
    out = []
    with manifest.open(newline="") as fh:
        for row in csv.DictReader(fh):
            img = read_image(root / row["file"]).array.astype(np.float32)
            mask = (read_image(root / row["mask"]).array > 127).astype(np.uint8)
            x, m = _to_square(normalize_intensity(img), mask, size)
            out.append(SliceSample(x.astype(np.float16), m, f"{row['source']}/{row['case_id']}", row["source"]))
    return out


def slices_from_volumes(root: str | Path, size: int, *, cases: Sequence[str] | None = None, context: int = 0,
                        ct_window: tuple[float, float] | None = None) -> list[SliceSample]:
    """``mr-ct-liver``: every axial slice of each NIfTI volume (group = case_id).

    Intensities as at inference (:func:`input_intensity`: the HU window for CT when ``ct_window`` is
    set); ``context=1`` gives 2.5D stacks ``(3, S, S)``.
    """
    from liverfib.io.nifti import read_nifti

    root = Path(root)
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise InputError(f"{root}: expected manifest.csv with case_id,modality,image,mask columns")
    out = []
    with manifest.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if cases is not None and row["case_id"] not in cases:
                continue
            vol = context_stack(input_intensity(read_nifti(root / row["image"]).array, ct_window), context)
            mask = (read_nifti(root / row["mask"]).array > 0).astype(np.uint8)
            for k in range(vol.shape[0]):
                x, m = _to_square(vol[k] if context else vol[k, 0], mask[k], size)
                out.append(SliceSample(x.astype(np.float16), m, row["case_id"], f"vol-{row['modality']}"))
    return out


def slices_from_synthetic(n_subjects: int, size: int, *, seed: int, slices_per_phase: int = 6,
                          with_masks: bool = True, context: int = 0) -> list[SliceSample]:
    """SYNTHETIC MR slices from in-memory subjects (all present phases; group = synthetic id)."""
    from liverfib.mri.synthetic import VENDORS, synthesize_subject

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_subjects):
        subj = synthesize_subject(i % 4 + 1, seed=seed * 7919 + i, vendor=list(VENDORS)[i % 3])
        for phase, vol in subj.phases.items():
            vol = context_stack(normalize_intensity(vol), context)
            mask = subj.phase_masks[phase]
            ks = rng.choice(vol.shape[0], size=min(slices_per_phase, vol.shape[0]), replace=False)
            for k in ks:
                x, m = _to_square(vol[k] if context else vol[k, 0], mask[k], size)
                out.append(SliceSample(x.astype(np.float16), m if with_masks else None, f"syn{seed}-{i}", "synthetic"))
    return out


def _augment_fn(size: int, seed: int) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    import albumentations as A

    aug = A.Compose([
        A.Affine(scale=(0.85, 1.15), translate_percent=(-0.06, 0.06), rotate=(-12, 12), p=0.8),
        A.RandomGamma(gamma_limit=(70, 150), p=0.5),
        A.RandomBrightnessContrast(0.15, 0.25, p=0.5),
        A.GaussianBlur(blur_limit=(3, 5), p=0.2),
        A.GaussNoise(std_range=(0.01, 0.05), p=0.3),
    ], seed=seed)

    rng = np.random.default_rng(seed + 1)

    def apply(img: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(S, S)`` or ``(C, S, S)`` image; a 2.5D stack loses its neighbours 20 % of the time
        (the centre slice repeated, as a lone 2D slice enters at inference)."""
        x = img.astype(np.float32)
        if x.ndim == 3:
            if rng.random() < 0.2:
                x = np.repeat(x[x.shape[0] // 2][None], x.shape[0], axis=0)
            r = aug(image=np.ascontiguousarray(x.transpose(1, 2, 0)), mask=mask)
            return np.clip(r["image"], 0, 1).transpose(2, 0, 1), r["mask"]
        r = aug(image=x, mask=mask)
        return np.clip(r["image"], 0, 1), r["mask"]

    return apply


def _channels(img: np.ndarray, n_ch: int) -> np.ndarray:
    """``(S, S)`` -> ``(n_ch, S, S)`` (a lone slice repeated); a ``(C, S, S)`` stack is returned as is."""
    return img if img.ndim == 3 else np.repeat(img[None], n_ch, axis=0)


def _time_annealed_one_cycle(opt: Any, steps: int, time_limit_s: float) -> Any:
    """One-cycle LR (10 % warm-up, cosine decay to 1 %) driven by max(step/steps, elapsed/time_limit_s)."""
    import time

    from torch.optim.lr_scheduler import LambdaLR

    t0 = time.time()

    def factor(n: int) -> float:
        frac = min(1.0, max(n / steps, (time.time() - t0) / time_limit_s))
        scale = frac / 0.1 if frac < 0.1 else 0.5 * (1 + np.cos(np.pi * (frac - 0.1) / 0.9))
        return max(scale, 0.01)

    return LambdaLR(opt, factor)


def _source_weights(labelled: Sequence[SliceSample], source_weights: dict[str, float] | None) -> np.ndarray:
    """Sampling probability per slice: ``w_source / n_source`` (default weight 1), summing to 1."""
    sources = [s.source for s in labelled]
    counts = {k: sources.count(k) for k in set(sources)}
    w = np.array([(source_weights or {}).get(s, 1.0) / counts[s] for s in sources])
    return w / w.sum()


def _slice_batches(labelled: Sequence[SliceSample], p: np.ndarray, augment: Callable[..., Any],
                   rng: np.random.Generator, n_ch: int, batch_size: int, steps: int) -> Callable[[int], Any]:
    """``fit``'s batches: ``steps`` augmented batches ``(x (B, n_ch, S, S), y (B, 1, S, S))`` drawn with
    probabilities ``p``."""
    import torch

    def batches(epoch: int):  # type: ignore[no-untyped-def]
        for _ in range(steps):
            idx = rng.choice(len(labelled), size=batch_size, p=p)
            pairs = [augment(labelled[i].image, labelled[i].mask) for i in idx]
            x = torch.from_numpy(np.stack([_channels(q[0], n_ch) for q in pairs]).astype(np.float32))
            y = torch.from_numpy(np.stack([q[1] for q in pairs])[:, None].astype(np.float32))
            yield x, y

    return batches


@dataclass
class _Consistency:
    """Mean-teacher consistency on unlabelled slices (none without a teacher): MSE between the
    student's and the teacher's sigmoid outputs under independent intensity noise, weighted by
    ``weight`` and ramped up over ``ramp_steps`` (Tarvainen & Valpola, 2017)."""

    teacher: Any
    unlabelled: Sequence[SliceSample]
    rng: np.random.Generator
    n_ch: int
    batch_size: int
    ramp_steps: float
    weight: float

    def __call__(self, net: Any, step: int) -> tuple[Any, float]:
        """``(consistency loss, ramp)`` for this step."""
        import torch

        uidx = self.rng.choice(len(self.unlabelled), size=self.batch_size)
        u = torch.from_numpy(np.stack([_channels(self.unlabelled[i].image, self.n_ch) for i in uidx]).astype(np.float32))
        with torch.no_grad():
            target = torch.sigmoid(self.teacher((u + 0.03 * torch.randn_like(u)).clamp(0, 1)))
        cons = torch.mean((torch.sigmoid(net((u + 0.03 * torch.randn_like(u)).clamp(0, 1))) - target) ** 2)
        return cons, float(np.exp(-5 * (1 - min(1.0, step / self.ramp_steps)) ** 2))


def _seg_loss(consistency: _Consistency) -> Callable[[Any, Any, Any], tuple[Any, dict[str, float]]]:
    """``fit``'s loss: Dice + BCE on the labelled batch, plus the ramped consistency term with a teacher."""
    import torch
    from monai.losses import DiceLoss

    dice_loss = DiceLoss(sigmoid=True, batch=True)
    bce = torch.nn.BCEWithLogitsLoss()

    def loss_fn(net: Any, batch: Any, state: Any) -> tuple[Any, dict[str, float]]:
        x, y = batch
        logits = net(x)
        loss_sup = dice_loss(logits, y) + bce(logits, y)
        loss, cons = loss_sup, torch.zeros(())
        if consistency.teacher is not None:
            cons, ramp = consistency(net, state.step)
            loss = loss + consistency.weight * ramp * cons
        return loss, {"loss": loss_sup.item(), "consistency": cons.item()}

    return loss_fn


def _frozen_copy(net: Any) -> Any:
    """A copy of ``net`` in eval mode without gradients (the mean teacher)."""
    import copy

    teacher = copy.deepcopy(net).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def _ema_update(teacher: Any, net: Any, decay: float) -> Callable[[Any], None]:
    """``fit``'s after-step hook: teacher weights <- ``decay`` x teacher + (1 - ``decay``) x student;
    buffers (batch-norm statistics) copied. Does nothing without a teacher."""
    import torch

    def update(state: Any) -> None:
        if teacher is not None:
            with torch.no_grad():
                for pt, ps in zip(teacher.parameters(), net.parameters(), strict=True):
                    pt.mul_(decay).add_(ps.detach(), alpha=1 - decay)
                for bt, bs in zip(teacher.buffers(), net.buffers(), strict=True):
                    bt.copy_(bs)

    return update


def _step_logger(log: Callable[[str], None] | None, steps: int, time_limit_s: float | None) -> Callable[[Any], None]:
    """``fit``'s after-step hook: the mean loss every 25 steps, and when the time limit is reached."""

    def report(state: Any) -> None:
        if log is not None and state.step % 25 == 0:
            log(f"step {state.step}/{steps} loss {np.mean([r['loss'] for r in state.rows[-25:]]):.3f} "
                f"({state.seconds:.0f} s)")
        if log is not None and time_limit_s is not None and state.seconds > time_limit_s:
            log(f"time limit {time_limit_s:.0f} s reached at step {state.step}")

    return report


def train_segmenter(
    train: Sequence[SliceSample],
    *,
    cfg: SegModelConfig,
    steps: int = 300,
    batch_size: int = 8,
    lr: float = 2e-3,
    seed: int = 0,
    source_weights: dict[str, float] | None = None,
    unlabelled: Sequence[SliceSample] = (),
    mean_teacher_weight: float = 0.0,
    ema_decay: float = 0.99,
    log: Callable[[str], None] | None = None,
    time_limit_s: float | None = None,
    anneal_by_time: bool = False,
    pretrained: bool = True,
    init_net: Any | None = None,
) -> tuple[Any, list[dict[str, float]]]:
    """Train a 2D segmenter on labelled slices (Dice + BCE); returns ``(net, log_rows)``.

    With ``mean_teacher_weight > 0`` and ``unlabelled`` slices, an EMA teacher (decay
    ``ema_decay``) gives targets for a consistency loss (MSE of sigmoid outputs under independent
    intensity noise), ramped up over the first 40 % of steps (Tarvainen & Valpola, 2017).
    ``source_weights`` rebalances sampling per source (weight per slice = w_source / n_source).
    ``anneal_by_time`` (needs ``time_limit_s``): the one-cycle schedule (10 % warm-up, cosine decay)
    follows the larger of step/steps and elapsed/time_limit, so a run cut by the time cap on a busy
    CPU still ends with a fully annealed learning rate. ``init_net`` fine-tunes that (trained) net of
    the same architecture instead of building a fresh one.
    """
    import torch

    from liverfib.training.trainer import fit

    if cfg.spatial_dims != 2:
        raise InputError("train_segmenter trains the 2D slice model; set spatial_dims=2")
    labelled = [s for s in train if s.mask is not None]
    if not labelled:
        raise InputError("No labelled slices to train on")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_seg_net(cfg, pretrained=pretrained) if init_net is None else init_net  # fine-tune a trained net
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    if anneal_by_time and time_limit_s is None:
        raise InputError("anneal_by_time needs time_limit_s")
    sched = (_time_annealed_one_cycle(opt, steps, time_limit_s) if anneal_by_time  # type: ignore[arg-type]
             else torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1))
    n_ch = 2 * cfg.context + 1
    batches = _slice_batches(labelled, _source_weights(labelled, source_weights), _augment_fn(cfg.img_size, seed),
                             rng, n_ch, batch_size, steps)
    teacher = _frozen_copy(net) if mean_teacher_weight > 0 and unlabelled else None
    consistency = _Consistency(teacher, unlabelled, rng, n_ch, batch_size // 2, 0.4 * steps, mean_teacher_weight)
    state = fit(net, opt, _seg_loss(consistency), batches, scheduler=sched, time_limit_s=time_limit_s,
                after_step=[_ema_update(teacher, net, ema_decay), _step_logger(log, steps, time_limit_s)])
    rows = [{k: r[k] for k in ("step", "loss", "consistency", "seconds")} for r in state.rows]
    final = teacher if teacher is not None else net
    return final.eval(), rows
