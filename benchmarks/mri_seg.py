"""Train and evaluate the 2D (slice-wise) MR/CT liver segmenter on CPU; optionally ship it.

Split (grouped, fixed by --seed; never one volume/case in train and test):
  * ct-liver-slices: ~30 % of the (source, case_id) groups of each source held out;
  * mr-ct-liver: the two MANUAL-mask CT volumes (amos_ct_0013, dcmqi_ct) held out; the three
    TotalSegmentator-mask volumes (incl. the only MR) are used for training;
  * SYNTHETIC MR: train subjects from seed 1, test subjects from seed 999.

Usage:
  nice -n 10 .venv/bin/python benchmarks/mri_seg.py --steps 500 --out runs/mri_seg [--ship]
Prints and writes metrics.json (Dice/HD95 with 95 % bootstrap CIs over held-out cases).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from liverfib.evaluation.resampling import bootstrap
from liverfib.evaluation.segmentation import dice_hd95
from liverfib.models.bundle import save_bundle
from liverfib.mri.seg_training import (
    slices_from_ct_folder,
    slices_from_synthetic,
    slices_from_volumes,
    train_segmenter,
)
from liverfib.mri.segmentation import SegModel, SegModelConfig, seg_bundle_fields

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
TEST_VOLUMES = ("amos_ct_0013", "dcmqi_ct")
TRAIN_VOLUMES = ("totalseg_ct", "totalseg_ct_dicom", "totalseg_mr")


def boot_ci(values: list[float], n_boot: int = 2000, seed: int = 0) -> list[float] | None:
    v = np.asarray([x for x in values if x is not None], float)
    if v.size < 2:
        return None
    return bootstrap(v, n_boot=n_boot, seed=seed).as_list()


def summarize(per_case: dict[str, dict[str, float | None]]) -> dict:
    d = [c["dice"] for c in per_case.values() if c["dice"] is not None]
    h = [c["hd95"] for c in per_case.values() if c["hd95"] is not None]
    return {"n_cases": len(per_case), "dice_mean": float(np.mean(d)) if d else None, "dice_ci95": boot_ci(d),
            "hd95_mean": float(np.mean(h)) if h else None, "hd95_ci95": boot_ci(h), "per_case": per_case}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--img-size", type=int, default=160)
    ap.add_argument("--arch", default="unet-lite0")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-synthetic", type=int, default=24)
    ap.add_argument("--mean-teacher", type=float, default=0.0, help="consistency weight (0 = supervised only)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--ship", action="store_true", help="also write the bundle to src/liverfib/assets/mri_seg_default/")
    ap.add_argument("--time-limit", type=float, default=480.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    size = args.img_size
    t0 = time.time()

    ct = slices_from_ct_folder(SHARED / "ct-liver-slices", size)
    rng = np.random.default_rng(args.seed)
    test_groups: set[str] = set()
    for src in sorted({s.source for s in ct}):
        groups = sorted({s.group for s in ct if s.source == src})
        k = max(1, round(0.3 * len(groups)))
        test_groups |= set(rng.choice(groups, size=k, replace=False).tolist())
    ct_train = [s for s in ct if s.group not in test_groups]
    vol_train = slices_from_volumes(SHARED / "mr-ct-liver", size, cases=TRAIN_VOLUMES)
    syn_train = slices_from_synthetic(args.n_synthetic, size, seed=1)
    unlabelled = slices_from_synthetic(8, size, seed=2, with_masks=False) if args.mean_teacher > 0 else []
    train = ct_train + vol_train + syn_train
    print(f"train slices: ct {len(ct_train)}, volumes {len(vol_train)}, synthetic {len(syn_train)}; "
          f"held-out ct groups {len(test_groups)} ({time.time() - t0:.0f} s)", flush=True)

    cfg = SegModelConfig(img_size=size, arch=args.arch)
    weights = {"ct-liver-slices": 0.45, "vol-CT": 0.15, "vol-MR": 0.1, "synthetic": 0.3}
    for s in ("chaos-ct", "curvas", "ircad"):
        weights[s] = 0.15
    net, log = train_segmenter(train, cfg=cfg, steps=args.steps, seed=args.seed, lr=args.lr, source_weights=weights,
                               unlabelled=unlabelled, mean_teacher_weight=args.mean_teacher,
                               log=lambda m: print(m, flush=True), time_limit_s=args.time_limit)
    model = SegModel(net, cfg)
    train_s = time.time() - t0

    # ---- held-out evaluation
    import csv

    from liverfib.io import read_image
    from liverfib.io.nifti import read_nifti

    results: dict = {}
    per_case: dict[str, dict] = {}
    by_group: dict[str, list[tuple[float | None, float | None]]] = {}
    with (SHARED / "ct-liver-slices" / "manifest.csv").open() as fh:
        for row in csv.DictReader(fh):
            g = f"{row['source']}/{row['case_id']}"
            if g not in test_groups:
                continue
            img = read_image(SHARED / "ct-liver-slices" / row["file"]).array
            truth = read_image(SHARED / "ct-liver-slices" / row["mask"]).array > 127
            pred = model.segment(img)
            by_group.setdefault(g, []).append(dice_hd95(pred, truth))
    for g, vals in by_group.items():
        d = [v[0] for v in vals if v[0] is not None]
        h = [v[1] for v in vals if v[1] is not None]
        per_case[g] = {"dice": float(np.mean(d)) if d else None, "hd95": float(np.mean(h)) if h else None, "n_slices": len(vals)}
    results["ct_slices_heldout"] = {**summarize(per_case), "unit": "case (mean over its non-empty slices); HD95 in pixels of the 512x512 slice"}

    vols = {}
    for case in TEST_VOLUMES:
        img = read_nifti(SHARED / "mr-ct-liver" / case / "image.nii.gz")
        truth = read_nifti(SHARED / "mr-ct-liver" / case / "liver_mask.nii.gz").array > 0
        pred = model.segment(img.array)
        d, h = dice_hd95(pred, truth, img.spacing_mm)
        vols[case] = {"dice": d, "hd95": h, "shape": list(img.shape)}
    results["real_volumes_heldout_manual_masks"] = {**summarize(vols), "unit": "volume; HD95 in mm"}

    from liverfib.mri.synthetic import synthesize_subject
    syn = {}
    for i in range(8):
        subj = synthesize_subject(i % 4 + 1, seed=999_000 + i, vendor=["A", "B1", "B2"][i % 3])
        dd = []
        for phase, vol in subj.phases.items():
            pred = model.segment(vol)
            dd.append(dice_hd95(pred, subj.phase_masks[phase], subj.spacing_mm[phase]))
        syn[f"syn999-{i}"] = {"dice": float(np.mean([x[0] for x in dd])), "hd95": float(np.mean([x[1] for x in dd if x[1] is not None]))}
    results["synthetic_mr_heldout"] = {**summarize(syn), "unit": "subject (mean over its phases); HD95 in mm; SYNTHETIC"}

    vol = np.random.default_rng(0).normal(0, 1, (100, 256, 256)).astype(np.float32)
    t = time.time()
    model.segment(vol)
    results["cpu_seconds_256x256x100"] = time.time() - t
    results["train_seconds"] = train_s
    results["steps_done"] = len(log)
    results["config"] = {**cfg.model_dump(mode="json"), **{k: str(v) for k, v in vars(args).items()}}
    results["device"] = f"CPU, torch.set_num_threads({args.threads}), shared 2-core machine"
    results["weights"] = "ImageNet tf_efficientnet_lite0 encoder (offline), decoder random init" if args.arch == "unet-lite0" else "random init"
    print(json.dumps({k: (v if not isinstance(v, dict) or "per_case" not in v else {kk: vv for kk, vv in v.items()}) for k, v in results.items()}, indent=1, default=str))
    (args.out / "metrics.json").write_text(json.dumps(results, indent=2, default=str))
    info = {"trained_on": "ct-liver-slices (70% of cases), mr-ct-liver totalseg_ct/totalseg_ct_dicom/totalseg_mr, "
            f"{args.n_synthetic} SYNTHETIC MR subjects", "steps": len(log), "heldout": {
                k: {kk: results[k][kk] for kk in ("dice_mean", "dice_ci95", "hd95_mean", "n_cases")}
                for k in ("ct_slices_heldout", "real_volumes_heldout_manual_masks", "synthetic_mr_heldout")},
            "command": "benchmarks/mri_seg.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())}
    save_bundle(args.out / "model", net, **seg_bundle_fields(cfg, **info))
    if args.ship:
        dest = Path(__file__).resolve().parents[1] / "src" / "liverfib" / "assets" / "mri_seg_default"
        save_bundle(dest, net, **seg_bundle_fields(cfg, **info))
        print("shipped", dest)


if __name__ == "__main__":
    main()
