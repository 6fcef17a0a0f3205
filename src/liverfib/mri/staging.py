"""Multi-phase MRI fibrosis staging: per-phase 2.5D encoders fused over the phases present.

Input ``x (B, P, S, 3, N, N)`` (P phase slots, S slice stacks of 3 adjacent slices, crop N) and
``present (B, P)``. A shared encoder (a small random-init CNN, or timm ``tf_efficientnet_lite0``
with the offline ImageNet weights) gives feature maps ``(C, h, w)`` per slice stack. Each phase has
its own linear head on the stack-averaged pooled features ("per-phase encoders": shared trunk,
phase-specific heads), giving 3 ordinal logits ``[S>=2, S>=3, S>=4]``.

Fusion over the phases present:

* ``consensus`` (LiQA winner style, multi-view consensus): the mean of the per-phase logits;
* ``attention`` (CirrhosisStage style, sequence attention): softmax attention over the phase
  features (with phase embeddings), then one head.

CAM regulariser: the class activation maps of every phase head (``|w . F|`` summed over the three
outputs) should lie inside the liver; the penalty is the fraction of CAM mass outside the
(downsampled) liver mask. (The absolute value matters: with ``relu(w . F)`` the net can zero the
penalty by flipping the head's sign, which switches staging off; seen in a first run.)

Bundles of task ``mri-staging`` also hold the per-slice CirrMRI600+ network of
:mod:`liverfib.mri.slice_staging`; the saved config's ``layout`` says which
(:func:`liverfib.pipeline._mri_common.staging_network`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from liverfib.mri.encoders import EncoderName, build_encoder
from liverfib.mri.exam import LIQA_PHASES

__all__ = ["StagingConfig", "cam_outside_penalty", "build_staging_net", "cumulative_to_stage_probs",
           "staging_bundle_fields"]



class StagingConfig(BaseModel):
    """Model + preprocessing of the MRI staging network (saved in every checkpoint)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layout: Literal["liqa"] = "liqa"
    encoder: EncoderName = "small_cnn"
    fusion: Literal["consensus", "attention"] = "consensus"
    phases: tuple[str, ...] = LIQA_PHASES
    n_stacks: int = 3
    crop_size: int = 48
    mask_input: bool = True
    register_phases: bool = False
    width: int = 16


def build_staging_net(cfg: StagingConfig, *, pretrained: bool = False) -> Any:
    """The fusion network (torch ``nn.Module``); ``pretrained`` loads offline ImageNet lite0 weights."""
    import torch
    from torch import nn

    class FusionNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cfg = cfg
            self.encoder = build_encoder(cfg.encoder, width=cfg.width, pretrained=pretrained)
            c = self.encoder.out_channels
            p = len(cfg.phases)
            self.head_w = nn.Parameter(torch.randn(p, 3, c) * 0.01)
            self.head_b = nn.Parameter(torch.tensor([1.0, 0.0, -1.0]).repeat(p, 1))
            self.phase_emb = nn.Parameter(torch.zeros(p, c))
            self.att = nn.Sequential(nn.Linear(c, 64), nn.Tanh(), nn.Linear(64, 1))
            self.fused_head = nn.Linear(c, 3)

        def config(self) -> dict[str, Any]:
            return cfg.model_dump(mode="json")

        def forward(self, x: torch.Tensor, present: torch.Tensor) -> dict[str, torch.Tensor]:
            """x (B, P, S, 3, N, N), present (B, P) bool -> logits (B, 3), phase_logits (B, P, 3), cam (B, P, S, h, w)."""
            b, p, s = x.shape[:3]
            fmap = self.encoder(x.flatten(0, 2))  # (B*P*S, C, h, w)
            c, h, w = fmap.shape[1:]
            fmap = fmap.view(b, p, s, c, h, w)
            feat = fmap.mean(dim=(2, 4, 5))  # (B, P, C)
            phase_logits = torch.einsum("bpc,pkc->bpk", feat, self.head_w) + self.head_b
            cam = torch.einsum("bpschw,pkc->bpskhw", fmap, self.head_w).abs().sum(3)  # (B, P, S, h, w)
            pres = present.float()
            if cfg.fusion == "consensus":
                logits = (phase_logits * pres[..., None]).sum(1) / pres.sum(1, keepdim=True).clamp(min=1)
            else:
                score = self.att(torch.tanh(feat + self.phase_emb)).squeeze(-1)
                score = score.masked_fill(~present, -1e4)
                alpha = torch.softmax(score, dim=1)
                logits = self.fused_head((alpha[..., None] * feat).sum(1))
            return {"logits": logits, "phase_logits": phase_logits, "cam": cam}

    return FusionNet()


def cam_outside_penalty(cam: Any, liver: Any, present: Any) -> Any:
    """Fraction of CAM mass outside the liver, averaged over present phases.

    cam ``(B, P, S, h, w)``, liver ``(B, S, N, N)`` 0/1, present ``(B, P)`` bool.
    """
    import torch
    import torch.nn.functional as F

    b, p, s, h, w = cam.shape
    inside = F.adaptive_avg_pool2d(liver, (h, w))  # (B, S, h, w) liver fraction per cell
    outside = (cam * (1 - inside[:, None])).sum(dim=(2, 3, 4))
    total = cam.sum(dim=(2, 3, 4))
    # scale-invariant ratio: no additive epsilon, else shrinking every CAM to ~0 "solves" the penalty
    frac = outside / total.clamp(min=torch.finfo(cam.dtype).tiny)
    pres = present.float()
    return (frac * pres).sum() / pres.sum().clamp(min=1)


def cumulative_to_stage_probs(cum: np.ndarray) -> np.ndarray:
    """Ordinal ``(N, 3)`` P(S>=2), P(S>=3), P(S>=4) -> ``(N, 4)`` P(S1..S4) (monotone, sums to 1)."""
    c = np.minimum.accumulate(np.clip(cum, 0, 1), axis=1)
    probs = np.concatenate([1 - c[:, :1], c[:, :-1] - c[:, 1:], c[:, -1:]], axis=1)
    probs = np.clip(probs, 0, 1)
    return probs / probs.sum(axis=1, keepdims=True)


def staging_bundle_fields(net: Any, **info: Any) -> dict[str, Any]:
    """``save_bundle`` keyword arguments of an ``mri-staging`` network (its ``config()`` is saved);
    ``info`` (``data``, ``heldout``, ``synthetic``, ``layout``, ``classes``, ...) is kept under
    ``extra.info`` and returned by
    :func:`liverfib.pipeline._mri_common.staging_network`."""
    model = net.config()
    heldout = info.get("heldout")
    return {
        "task": "mri-staging",
        "network": {"name": model.get("encoder", "small_cnn"), "args": model},
        "classes": list(info["classes"]) if info.get("classes") else None,
        "preprocessing": {k: model[k] for k in ("crop_size", "mask_input", "register_phases") if k in model},
        "metrics": {"split": "heldout", "values": heldout} if heldout else {},
        "training_data": {"description": info.get("data")},
        "synthetic": bool(info.get("synthetic", False)),
        "extra": {"info": info},
    }
