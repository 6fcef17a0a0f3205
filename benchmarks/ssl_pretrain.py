"""Domain-adaptive self-supervised pre-training (SimCLR / NT-Xent) of an ImageNet backbone on
unlabelled ultrasound images (benchmark helper, CPU).

usage: python benchmarks/ssl_pretrain.py OUT_DIR [--data DIR ...] [--exclude-split SPLIT.csv]
       [--crop 112] [--scale 0.2 0.7] [--batch 64] [--lr 2e-4] [--minutes 35] [--max-epochs 40] [--threads 2]
Images: the distinct images (first row per sha256 of the audit) of each labelled ``--data`` folder,
minus the rows whose split in ``--exclude-split`` is ``test``, plus every image of each
``--extra-images`` glob (unlabelled). Each image goes through the default fan preprocessing at
224 px (as at feature time), then two views: ``build_us_augment`` (flip, affine, brightness/contrast,
gamma, blur, speckle, TGC bands, depth crop) and a random-resized crop (area fraction ``--scale``) to ``--crop`` px, so
the texture scale stays near the 224 px feature-time scale. The encoder
starts from the ImageNet weights; a 2-layer projector is trained with it; the encoder's learning rate
warms up over the first epoch (so the random projector does not scramble the ImageNet features) and
follows a cosine to 0 over the epochs the time budget allows (estimated after epoch 1).
Writes OUT_DIR/backbone.pt (the encoder's state_dict, ``StagingNet.encoder``) and OUT_DIR/log.json.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from liverfib.dataset.audit import audit_folder
from liverfib.io import read_image
from liverfib.models.staging import StagingNet
from liverfib.preprocess.augment import build_us_augment
from liverfib.preprocess.transforms import PreprocessConfig, UltrasoundPreprocess


def _image_paths(data: list[str], exclude_split: str | None, extra: list[str]) -> tuple[list[str], dict]:
    """Distinct labelled images (test rows dropped) + extra unlabelled images, and counts."""
    test = set()
    if exclude_split:
        with open(exclude_split) as fh:
            test = {r["path"] for r in csv.DictReader(fh) if r["split"] == "test"}
    paths, counts = [], {}
    for folder in data:
        distinct = audit_folder(folder).distinct_files()
        kept = [r["path"] for r in distinct if r["path"] not in test]
        counts[folder] = {"distinct": len(distinct), "used": len(kept), "test_excluded": len(distinct) - len(kept)}
        paths += [f"{folder}/{p}" for p in kept]
    for pattern in extra:
        found = sorted(glob.glob(pattern))
        counts[pattern] = {"used": len(found)}
        paths += found
    return paths, counts


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """SimCLR loss of two ``(B, D)`` projections of the same B images."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / tau
    sim.fill_diagonal_(float("-inf"))
    n = z1.shape[0]
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


class _Views:
    """uint8 ``(224, 224)`` image -> two augmented, normalised ``(3, crop, crop)`` views."""

    def __init__(self, crop: int, scale: tuple[float, float], seed: int) -> None:
        import albumentations as A

        self.us = build_us_augment(seed)
        rrc = A.RandomResizedCrop(size=(crop, crop), scale=scale, ratio=(0.75, 1.33))
        self.rrc = A.Compose([rrc], seed=seed)

    def view(self, img: np.ndarray) -> np.ndarray:
        return UltrasoundPreprocess.normalise(self.rrc(image=self.us(img))["image"])

    def batch(self, imgs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        a = np.stack([self.view(i) for i in imgs])
        b = np.stack([self.view(i) for i in imgs])
        return torch.from_numpy(a), torch.from_numpy(b)


def _lr_factor(step: int, warm: int, total: int) -> float:
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def train(images: np.ndarray, a: argparse.Namespace) -> tuple[nn.Module, list[dict]]:
    """SimCLR on ``(N, 224, 224)`` uint8 images within ``a.minutes``; returns the encoder and a log."""
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    enc = StagingNet(a.backbone, feature_stages=[1, 2, 3], pretrained=True).encoder.train()
    dim = getattr(enc, "head_hidden_size", None) or enc.num_features
    proj = nn.Sequential(nn.Linear(dim, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 128))
    opt = torch.optim.AdamW([{"params": enc.parameters(), "lr": a.lr}, {"params": proj.parameters(), "lr": a.proj_lr}],
                            weight_decay=a.wd)
    views = _Views(a.crop, tuple(a.scale), a.seed)
    steps_per_epoch = len(images) // a.batch
    total, log, step, t0 = a.max_epochs * steps_per_epoch, [], 0, time.time()
    for epoch in range(a.max_epochs):
        order, losses = rng.permutation(len(images)), []
        for i in range(steps_per_epoch):
            f = _lr_factor(step, steps_per_epoch, total)
            opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = a.lr * f, a.proj_lr * max(f, 0.1)
            x1, x2 = views.batch([images[j] for j in order[i * a.batch : (i + 1) * a.batch]])
            loss = nt_xent(proj(enc(x1)), proj(enc(x2)), a.tau)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        elapsed = time.time() - t0
        log.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": round(elapsed, 1)})
        print(json.dumps(log[-1]), flush=True)
        if epoch == 0:  # fix the schedule to the epochs the budget allows
            total = max(2, min(a.max_epochs, int(a.minutes * 60 / elapsed))) * steps_per_epoch
        if step >= total or elapsed + elapsed / (epoch + 1) > a.minutes * 60 * 1.05:
            break
    return enc.eval(), log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output folder (outside the repository, e.g. /tmp/ssl/run1)")
    ap.add_argument("--data", nargs="*", default=["../shared/data/liver-us-fibrosis"])
    ap.add_argument("--exclude-split", default="benchmarks/splits/us_grouped.csv",
                    help="split CSV whose test rows are left out of pre-training")
    ap.add_argument("--extra-images", nargs="*", default=["../shared/data/abdominal-us-liver/images/*.png"])
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--crop", type=int, default=112)
    ap.add_argument("--scale", type=float, nargs=2, default=[0.2, 0.7],
                    help="area range of the random-resized crop (of the 224 px image)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4, help="encoder peak learning rate (AdamW)")
    ap.add_argument("--proj-lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--tau", type=float, default=0.2, help="NT-Xent temperature")
    ap.add_argument("--minutes", type=float, default=35.0, help="training wall-time budget")
    ap.add_argument("--max-epochs", type=int, default=40)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images (smoke test)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    paths, counts = _image_paths(a.data, a.exclude_split, a.extra_images)
    paths = paths[: a.limit] if a.limit else paths
    t0 = time.time()
    pre = UltrasoundPreprocess(PreprocessConfig(img_size=224))
    images = np.stack([pre.geometry(read_image(p).array) for p in paths])
    prep_s = time.time() - t0
    print(f"{len(images)} images preprocessed in {prep_s:.0f}s", flush=True)
    enc, log = train(images, a)
    torch.save(enc.state_dict(), f"{a.out}/backbone.pt")
    recipe = {k: v for k, v in vars(a).items() if k not in ("out",)}
    info = {"method": "SimCLR (NT-Xent), ImageNet init", "recipe": recipe, "images": len(images),
            "image_counts": counts, "test_split_excluded": bool(a.exclude_split), "epochs": len(log),
            "train_seconds": log[-1]["seconds"], "preprocess_seconds": round(prep_s, 1), "log": log}
    with open(f"{a.out}/log.json", "w") as fh:
        json.dump(info, fh, indent=1)
    print("saved", f"{a.out}/backbone.pt")


if __name__ == "__main__":
    main()
