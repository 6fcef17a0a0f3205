"""Prepare exams for staging, train the fusion network with phase dropout + CAM regulariser, predict."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from liverfib.errors import InputError
from liverfib.mri.crops import ExamCrops, exam_crops
from liverfib.mri.exam import MriExam, read_exam_volumes, reference_phase
from liverfib.mri.staging import StagingConfig, build_staging_net, cam_outside_penalty

__all__ = ["prepare_exam", "stack_crops", "train_staging", "predict_cumulative"]


def prepare_exam(exam: MriExam, cfg: StagingConfig, *, seg_model: Any = None) -> tuple[ExamCrops, dict[str, Any]]:
    """Read an exam, get its liver mask (the annotation, else ``seg_model.segment`` on the reference phase)
    and cut the staging crops. Returns ``(crops, info)`` with the phases used and the mask source."""
    images, mask = read_exam_volumes(exam)
    images = {p: im for p, im in images.items() if p in cfg.phases}
    if not images:
        raise InputError(f"{exam.root}: none of the model's phases {list(cfg.phases)} is present")
    ref = exam.mask_phase if mask is not None and exam.mask_phase in images else reference_phase(
        replace(exam, phase_paths={p: exam.phase_paths[p] for p in images})
    )
    if mask is not None and exam.mask_phase == ref:
        liver, source = mask.array, "annotation"
    else:
        if seg_model is None:
            raise InputError(f"{exam.root}: no mask_{ref} and no segmenter given (pass seg_model, e.g. the "
                             "shipped MR/CT liver segmenter)")
        liver, source = seg_model.segment(images[ref].array), "segmentation"
        if not liver.any():
            raise InputError(f"{exam.root}: the segmenter found no liver in {ref}; pass a mask_{ref} file")
    crops = exam_crops(images, liver, ref, register=cfg.register_phases, n_stacks=cfg.n_stacks,
                       size=cfg.crop_size, mask_input=cfg.mask_input)
    return crops, {"reference_phase": ref, "mask_source": source, "phases_used": sorted(images, key=list(cfg.phases).index)}


def stack_crops(crops: Sequence[ExamCrops]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> x (N, P, S, 3, n, n) float16, present (N, P) bool, liver (N, S, n, n) uint8."""
    return (np.stack([c.x for c in crops]).astype(np.float16), np.stack([c.present for c in crops]),
            np.stack([c.liver for c in crops]).astype(np.uint8))


def _ordinal_targets(stages: np.ndarray) -> np.ndarray:
    return np.stack([stages >= 2, stages >= 3, stages >= 4], axis=1).astype(np.float32)


def _augmented_exams(rng: np.random.Generator, x: np.ndarray, present: np.ndarray, phase_dropout: float,
                     max_shift_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 copies of crops ``x (B, P, S, 3, n, n)`` and ``present (B, P)``: each present phase
    dropped with probability ``phase_dropout`` (one always kept) and rolled by up to ``max_shift_px``;
    each exam scaled in intensity by 0.9-1.1."""
    xb = x.astype(np.float32)
    pb = present.copy()
    for i in range(len(xb)):
        on = np.flatnonzero(pb[i])
        drop = on[rng.random(on.size) < phase_dropout]
        if drop.size == on.size:
            drop = drop[1:]
        pb[i, drop] = False
        xb[i, ~pb[i]] = 0
        for p in np.flatnonzero(pb[i]):
            dy, dx = rng.integers(-max_shift_px, max_shift_px + 1, 2)
            xb[i, p] = np.roll(xb[i, p], (int(dy), int(dx)), axis=(-2, -1))
    return (xb * rng.uniform(0.9, 1.1, (len(xb), 1, 1, 1, 1, 1)).astype(np.float32)), pb


def _step_logger(log: Callable[[str], None] | None, steps: int, time_limit_s: float | None) -> Callable[[Any], None]:
    """``fit``'s after-step hook: every 25 steps the mean loss and CAM-outside fraction, and the time limit."""

    def report(state: Any) -> None:
        if log is not None and state.step % 25 == 0:
            r = state.rows[-25:]
            log(f"step {state.step}/{steps} loss {np.mean([q['loss'] for q in r]):.3f} "
                f"cam_outside {np.mean([q['cam_outside'] for q in r]):.3f} ({state.seconds:.0f} s)")
        if log is not None and time_limit_s is not None and state.seconds > time_limit_s:
            log(f"time limit reached at step {state.step}")

    return report


def train_staging(
    x: np.ndarray,
    present: np.ndarray,
    liver: np.ndarray,
    stages: np.ndarray,
    cfg: StagingConfig,
    *,
    steps: int = 250,
    batch_size: int = 8,
    lr: float = 3e-3,
    cam_weight: float = 0.5,
    aux_weight: float = 0.5,
    phase_dropout: float = 0.3,
    max_shift_px: int = 2,
    seed: int = 0,
    pretrained: bool = True,
    log: Callable[[str], None] | None = None,
    time_limit_s: float | None = None,
) -> tuple[Any, list[dict[str, float]]]:
    """Train on stacked crops (see :func:`stack_crops`) with stages 1..4.

    Loss = BCE(fused ordinal logits) + ``aux_weight`` x BCE(per-phase logits, present phases)
    + ``cam_weight`` x CAM-outside-liver fraction (ramped in from 30 % to 60 % of the steps: applied
    from the start it wins and the net stops staging). Each present phase is dropped with probability
    ``phase_dropout`` (at least one kept) and shifted by up to ``max_shift_px`` (misalignment).
    """
    import torch
    import torch.nn.functional as F

    from liverfib.training.trainer import fit

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_staging_net(cfg, pretrained=pretrained and cfg.encoder != "small_cnn")
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    targets = _ordinal_targets(np.asarray(stages))
    def batches(epoch: int):
        for _ in range(steps):
            idx = rng.choice(len(x), size=min(batch_size, len(x)), replace=False)
            xb, pb = _augmented_exams(rng, x[idx], present[idx], phase_dropout, max_shift_px)
            yield (torch.from_numpy(xb), torch.from_numpy(pb), torch.from_numpy(targets[idx]),
                   torch.from_numpy(liver[idx].astype(np.float32)))

    def loss_fn(net: Any, batch: Any, state: Any) -> tuple[Any, dict[str, float]]:
        """Ordinal BCE + per-phase BCE + the CAM-in-liver regulariser (ramped in)."""
        xb_t, pb_t, yb, liver_b = batch
        out = net(xb_t, pb_t)
        loss_main = F.binary_cross_entropy_with_logits(out["logits"], yb)
        per = F.binary_cross_entropy_with_logits(out["phase_logits"], yb[:, None].expand_as(out["phase_logits"]), reduction="none").mean(-1)
        loss_aux = (per * pb_t).sum() / pb_t.sum().clamp(min=1)
        loss_cam = cam_outside_penalty(out["cam"], liver_b, pb_t)
        cam_ramp = float(np.clip((state.step - 0.3 * steps) / (0.3 * steps), 0.0, 1.0))  # staging first, then CAM
        loss = loss_main + aux_weight * loss_aux + cam_weight * cam_ramp * loss_cam
        return loss, {"loss": loss_main.item(), "aux": loss_aux.item(), "cam_outside": loss_cam.item()}

    state = fit(net, opt, loss_fn, batches, scheduler=sched, time_limit_s=time_limit_s,
                after_step=[_step_logger(log, steps, time_limit_s)])
    rows = [{k: r[k] for k in ("step", "loss", "aux", "cam_outside", "seconds")} for r in state.rows]
    return net.eval(), rows


def predict_cumulative(net: Any, x: np.ndarray, present: np.ndarray, *, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Fused ``(N, 3)`` P(S>=2), P(S>=3), P(S>=4) and per-phase ``(N, P, 3)`` probabilities."""
    import torch

    if not present.any(axis=1).all():
        raise InputError("Every exam needs at least one phase present")
    fused, per = [], []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].astype(np.float32).copy()
            pb = present[i : i + batch_size]
            xb[~pb] = 0
            out = net(torch.from_numpy(xb), torch.from_numpy(pb))
            fused.append(torch.sigmoid(out["logits"]).numpy())
            per.append(torch.sigmoid(out["phase_logits"]).numpy())
    return np.concatenate(fused), np.concatenate(per)
