"""CT/MR liver segmenter with a three-part split by case: train / validation / test (issues #16.6, #19).

Split (``split``; written to benchmarks/splits/ct_seg_split.csv, one row per case):
  * test = the held-out cases of every earlier run (benchmarks/mri_seg.py, seed 0: ~30 % of the
    (source, case_id) groups of each ct-liver-slices source; the manual-mask volumes amos_ct_0013
    and dcmqi_ct), so the earlier 0.923 stays comparable;
  * validation = max(1, round(25 %)) of the remaining groups of each ct-liver-slices source (seed 1)
    and the volume totalseg_ct_dicom (TotalSegmentator mask: a model's mask, used for selection only);
  * train = everything else (+ SYNTHETIC MR subjects of seed 1).

Usage (CPU):
  nice -n 5 python benchmarks/ct_seg.py split
  nice -n 5 python benchmarks/ct_seg.py train --out runs/ct_seg/w25d --context 1 --ct-window -160 240
  python benchmarks/ct_seg.py validate --model runs/ct_seg/w25d/model       # every post-processing variant
  python benchmarks/ct_seg.py test --model runs/ct_seg/w25d/model [--ship]    # ONCE, for the shipped model
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import sys
import tempfile
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
from liverfib.pipeline._mri_common import liver_segmenter

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LIVERFIB_SHARED_DATA", ROOT / ".." / "shared" / "data"))  # worktrees: set the env var
SPLIT = ROOT / "benchmarks" / "splits" / "ct_seg_split.csv"
TEST_VOLUMES = ("amos_ct_0013", "dcmqi_ct")
VAL_VOLUMES = ("totalseg_ct_dicom",)
TRAIN_VOLUMES = ("totalseg_ct", "totalseg_mr")
CACHE = Path(os.environ.get("LIVERFIB_CACHE", Path(tempfile.gettempdir()) / "liverfib")) / "ct_seg_cache"
# Post-processing/TTA variants compared on validation (the model is fixed; each is one SegModelConfig).
VARIANTS = {
    "plain": {},
    "largest2d": {"largest_component_2d": True},
    "fill": {"fill_holes": True},
    "largest2d+fill": {"largest_component_2d": True, "fill_holes": True},
    "flip": {"tta_flip": True},
    "flip+largest2d+fill": {"tta_flip": True, "largest_component_2d": True, "fill_holes": True},
}


def boot_ci(values: list[float], n_boot: int = 2000, seed: int = 0) -> list[float] | None:
    """95 % percentile bootstrap CI of the mean over units (cases)."""
    v = np.asarray([x for x in values if x is not None], float)
    if v.size < 2:
        return None
    return bootstrap(v, n_boot=n_boot, seed=seed).as_list()


def make_split() -> dict[str, str]:
    """case -> 'train' | 'val' | 'test' (test reproduces benchmarks/mri_seg.py --seed 0)."""
    groups_by_source: dict[str, list[str]] = {}
    with (SHARED / "ct-liver-slices" / "manifest.csv").open() as fh:
        for row in csv.DictReader(fh):
            g = f"{row['source']}/{row['case_id']}"
            groups_by_source.setdefault(row["source"], [])
            if g not in groups_by_source[row["source"]]:
                groups_by_source[row["source"]].append(g)
    rng = np.random.default_rng(0)  # the very draw of benchmarks/mri_seg.py (sorted sources, sorted groups)
    test: set[str] = set()
    for src in sorted(groups_by_source):
        groups = sorted(groups_by_source[src])
        k = max(1, round(0.3 * len(groups)))
        test |= set(rng.choice(groups, size=k, replace=False).tolist())
    rng_val = np.random.default_rng(1)
    val: set[str] = set()
    for src in sorted(groups_by_source):
        rest = sorted(g for g in groups_by_source[src] if g not in test)
        k = max(1, round(0.25 * len(groups_by_source[src])))
        val |= set(rng_val.choice(rest, size=k, replace=False).tolist())
    split = {g: ("test" if g in test else "val" if g in val else "train") for src in sorted(groups_by_source)
             for g in sorted(groups_by_source[src])}
    split.update({f"mr-ct-liver/{c}": "test" for c in TEST_VOLUMES})
    split.update({f"mr-ct-liver/{c}": "val" for c in VAL_VOLUMES})
    split.update({f"mr-ct-liver/{c}": "train" for c in TRAIN_VOLUMES})
    return split


def read_split() -> dict[str, str]:
    with SPLIT.open() as fh:
        return {r["case"]: r["subset"] for r in csv.DictReader(fh)}


def cached(key: str, build):  # type: ignore[no-untyped-def]
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{key}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    value = build()
    path.write_bytes(pickle.dumps(value))
    return value


def _val_inputs(subset: str, split: dict[str, str]) -> list[tuple[str, str, np.ndarray, np.ndarray, tuple | None]]:
    """``(case, source, image, truth, spacing)`` of every slice (PNG) and volume (NIfTI) of a subset."""
    from liverfib.io import read_image
    from liverfib.io.nifti import read_nifti

    out = []
    with (SHARED / "ct-liver-slices" / "manifest.csv").open() as fh:
        for row in csv.DictReader(fh):
            g = f"{row['source']}/{row['case_id']}"
            if split.get(g) == subset:
                img = read_image(SHARED / "ct-liver-slices" / row["file"]).array
                truth = read_image(SHARED / "ct-liver-slices" / row["mask"]).array > 127
                out.append((g, row["source"], img, truth, None))
    for case, sub in split.items():
        if case.startswith("mr-ct-liver/") and sub == subset:
            name = case.split("/", 1)[1]
            img = read_nifti(SHARED / "mr-ct-liver" / name / "image.nii.gz")
            truth = read_nifti(SHARED / "mr-ct-liver" / name / "liver_mask.nii.gz").array > 0
            out.append((name, "volume", img.array, truth, img.spacing_mm))
    return out


def score(model: SegModel, subset: str, split: dict[str, str], variants: dict[str, dict] | None = None) -> dict:
    """Per variant: per case Dice/HD95 (slices: mean over a case's slices with liver, HD95 in px of the
    512² slice; volumes: HD95 in mm). Probabilities are computed once per flip setting."""
    from liverfib.mri.segmentation import postprocess_mask

    variants = variants or {"plain": {}}
    items = _val_inputs(subset, split)
    probs: dict[bool, list[np.ndarray]] = {}
    seconds: dict[bool, float] = {}
    for flip in sorted({bool(v.get("tta_flip", False)) for v in variants.values()}):
        m = with_variant(model, tta_flip=flip)
        t = time.time()
        probs[flip] = [m.predict_proba(it[2]) for it in items]
        seconds[flip] = time.time() - t
    res = {}
    for name, upd in variants.items():
        flip = bool(upd.get("tta_flip", False))
        per: dict[str, list] = {}
        for it, pr in zip(items, probs[flip], strict=True):
            mask = postprocess_mask((pr >= model.cfg.threshold).astype(np.uint8), fill_holes=bool(upd.get("fill_holes")),
                                    largest_2d=bool(upd.get("largest_component_2d")))
            per.setdefault(it[0], []).append((it[1], dice_hd95(mask, it[3], it[4])))
        cases = {}
        for case, vals in per.items():
            d = [v[1][0] for v in vals if v[1][0] is not None]
            h = [v[1][1] for v in vals if v[1][1] is not None]
            cases[case] = {"dice": float(np.mean(d)) if d else None, "hd95": float(np.mean(h)) if h else None,
                           "n_slices": len(vals), "source": vals[0][0]}
        res[name] = {"cases": cases, "inference_seconds": seconds[flip]}
    return res


def score_slices(model: SegModel, subset: str, split: dict[str, str]) -> dict[str, dict]:
    return {k: v for k, v in score(model, subset, split)["plain"]["cases"].items() if v["source"] != "volume"}


def score_volumes(model: SegModel, cases: tuple[str, ...]) -> dict[str, dict]:
    from liverfib.io.nifti import read_nifti

    out = {}
    for case in cases:
        img = read_nifti(SHARED / "mr-ct-liver" / case / "image.nii.gz")
        truth = read_nifti(SHARED / "mr-ct-liver" / case / "liver_mask.nii.gz").array > 0
        t = time.time()
        pred = model.segment(img.array)
        d, h = dice_hd95(pred, truth, img.spacing_mm)
        out[case] = {"dice": d, "hd95": h, "shape": list(img.shape), "seconds": time.time() - t}
    return out


def with_variant(model: SegModel, **update: object) -> SegModel:
    return SegModel(model.net, model.cfg.model_copy(update=update), model.info)


def validate(model: SegModel, split: dict[str, str], names: list[str] | None = None) -> dict[str, dict]:
    """Every post-processing variant on the validation cases; primary = mean Dice over all val cases."""
    res = {}
    for name, r in score(model, "val", split, {k: VARIANTS[k] for k in (names or VARIANTS)}).items():
        cases = r["cases"]
        dice = [c["dice"] for c in cases.values()]
        sl = {k: c for k, c in cases.items() if c["source"] != "volume"}
        res[name] = {"val_mean_dice": float(np.mean(dice)), "val_dice_ci": boot_ci(dice),
                     "slices_mean_dice": float(np.mean([c["dice"] for c in sl.values()])),
                     "per_source": {s: float(np.mean([c["dice"] for c in sl.values() if c["source"] == s]))
                                    for s in sorted({c["source"] for c in sl.values()})},
                     "volumes": {k: c for k, c in cases.items() if c["source"] == "volume"}, "per_case": cases,
                     "inference_seconds": r["inference_seconds"]}
        print(f"{name:22s} val {res[name]['val_mean_dice']:.4f} slices {res[name]['slices_mean_dice']:.4f} "
              f"{ {k: round(v, 3) for k, v in res[name]['per_source'].items()} } "
              f"vol {[round(v['dice'], 3) for v in res[name]['volumes'].values()]}", flush=True)
    return res


def cmd_split(args: argparse.Namespace) -> None:
    from liverfib.io.atomic import atomic_write

    split = make_split()
    lines = ["case,subset"] + [f"{g},{s}" for g, s in split.items()]
    atomic_write(SPLIT, data="\n".join(lines) + "\n")
    counts = {s: sum(v == s for v in split.values()) for s in ("train", "val", "test")}
    print(SPLIT, counts)


def cmd_train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    split = read_split()
    size, ctx = args.img_size, args.context
    window = tuple(args.ct_window) if args.ct_window else None
    t0 = time.time()
    ct = cached(f"ct_{size}", lambda: slices_from_ct_folder(SHARED / "ct-liver-slices", size))
    subsets = ("train", "val") if args.include_val else ("train",)  # train+val: the final fit, nothing left to select on
    ct_train = [s for s in ct if split.get(s.group) in subsets]
    volumes = TRAIN_VOLUMES + (VAL_VOLUMES if args.include_val else ())
    vol = cached(f"vol_{size}_{ctx}_{window}_{'-'.join(volumes)}", lambda: slices_from_volumes(
        SHARED / "mr-ct-liver", size, cases=volumes, context=ctx, ct_window=window))
    syn = cached(f"syn_{size}_{ctx}_{args.n_synthetic}", lambda: slices_from_synthetic(
        args.n_synthetic, size, seed=1, context=ctx))
    print(f"train slices: ct {len(ct_train)} ({len({s.group for s in ct_train})} cases), volumes {len(vol)}, "
          f"synthetic {len(syn)} ({time.time() - t0:.0f} s)", flush=True)
    cfg = SegModelConfig(img_size=size, arch="unet-lite0", context=ctx, ct_window=window)
    init = None
    if args.init:  # fine-tune a trained checkpoint (same net) with this run's inputs
        base = liver_segmenter(args.init)
        if (base.cfg.arch, base.cfg.img_size) != (cfg.arch, cfg.img_size):
            raise SystemExit(f"--init {args.init}: {base.cfg.arch}/{base.cfg.img_size} differs from this run")
        init = base.net.float().train()
    weights = {"vol-CT": 0.15, "vol-MR": 0.1, "synthetic": 0.3, "chaos-ct": 0.15, "curvas": 0.15, "ircad": 0.15}
    t1 = time.time()
    net, log = train_segmenter(ct_train + vol + syn, cfg=cfg, steps=args.steps, seed=args.seed, lr=args.lr,
                               source_weights=weights, log=lambda m: print(m, flush=True), time_limit_s=args.time_limit,
                               anneal_by_time=True, init_net=init)
    train_s = time.time() - t1
    model = SegModel(net, cfg)
    info = {"init": str(args.init or "ImageNet lite0 encoder"),
            "trained_on": f"ct-liver-slices {'+'.join(subsets)} cases ({len({s.group for s in ct_train})}), mr-ct-liver "
            f"{'/'.join(volumes)}, {args.n_synthetic} SYNTHETIC MR subjects",
            "split": str(SPLIT.relative_to(ROOT)), "steps": len(log), "train_seconds": round(train_s),
            "device": f"CPU, {args.threads} torch threads, shared 2-core machine",
            "command": " ".join(sys.argv)}
    save_bundle(args.out / "model", net, **seg_bundle_fields(cfg, **info))  # validation figures live in val.json
    if args.include_val:  # the validation cases were trained on: no validation figure to write
        print(f"done (train+val, not validated): {len(log)} steps, {train_s:.0f} s training", flush=True)
        return
    val = validate(model, split)
    (args.out / "val.json").write_text(json.dumps({"info": info, "validation": val}, indent=1, default=str))
    print(f"done: {len(log)} steps, {train_s:.0f} s training", flush=True)


def write_val_results(name: str, val: dict, info: dict) -> None:
    """One result JSON per post-processing variant (``<name>_<variant>``), validation subset only."""
    from liverfib.evaluation.results import metric, write_result

    for variant, v in val.items():
        m = {"val_mean_dice": metric(v["val_mean_dice"], v["val_dice_ci"])}
        m.update({f"dice_{s}": metric(d) for s, d in v["per_source"].items()})
        m.update({f"dice_{k}": metric(c["dice"]) for k, c in v.get("volumes", {}).items()})
        n = len(v["per_case"])
        print(write_result(f"{name}_{variant.replace('+', '_')}", title=f"CT seg validation: {name}, {variant}",
                           metrics=m, n=n, unit="validation case", groups=n, command=" ".join(sys.argv),
                           synthetic=False, split_file=SPLIT, subset="val", test_scored_count=0,
                           extra={"per_case": v["per_case"], "run_info": info,
                                  "ci_method": "percentile bootstrap over validation cases"}))


def cmd_validate(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    val = validate(liver_segmenter(args.model), read_split(), args.variants)
    if args.json:
        args.json.write_text(json.dumps(val, indent=1, default=str))
    if args.name:
        write_val_results(args.name, val, {"model": str(args.model)})


def cmd_test(args: argparse.Namespace) -> None:
    """Score the test cases once for the model that ships; write the two result JSONs."""
    from liverfib.evaluation.results import device_string, metric, write_result

    torch.set_num_threads(args.threads)
    split = read_split()
    model = liver_segmenter(args.model)
    if args.variant:
        model = with_variant(model, **VARIANTS[args.variant])
    sl = score_slices(model, "test", split)
    vo = score_volumes(model, TEST_VOLUMES)
    dice = [c["dice"] for c in sl.values()]
    hd = [c["hd95"] for c in sl.values() if c["hd95"] is not None]
    metrics = {"dice": metric(np.mean(dice), boot_ci(dice)), "hd95_px": metric(np.mean(hd), boot_ci(hd))}
    per_source = {}
    for src in sorted({c["source"] for c in sl.values()}):
        d = [c["dice"] for c in sl.values() if c["source"] == src]
        metrics[f"dice_{src}"] = metric(np.mean(d), boot_ci(d))
        per_source[src] = len(d)
    cfg = model.cfg.model_dump(mode="json")
    cmd = " ".join(["python"] + sys.argv)
    note = ("test_scored_count counts scorings of THIS model's test subset. These test cases were also scored "
            "for the earlier runs of benchmarks/mri_seg.py: the old shipped 0.923 was the best of those runs on "
            "these same cases (selected on test). " + (args.selection or ""))
    extra = {"per_case": sl, "cases_per_source": per_source, "model": str(args.model), "model_config": cfg,
             "model_info": model.info, "ci_method": "percentile bootstrap over cases (2000 resamples)",
             "note": note, "old_default_same_cases": {"dice": 0.923, "ci": [0.899, 0.946],
                                                      "source": "benchmarks/mri_seg_results_256.json"}}
    dev = device_string(args.threads)
    print(write_result("ct_seg_slices", title="CT liver segmentation on 2D slices (ct-liver-slices test cases)",
                       metrics=metrics, n=len(sl), unit="case (mean Dice over its slices with liver)",
                       command=cmd, synthetic=False, split_file=SPLIT.relative_to(ROOT), subset="test", groups=len(sl),
                       test_scored_count=args.test_scored_count, device=dev, extra=extra))
    vmetrics = {}
    for case, r in vo.items():
        vmetrics[f"dice_{case}"] = metric(r["dice"])
        vmetrics[f"hd95_mm_{case}"] = metric(r["hd95"])
    vmetrics["dice_mean"] = metric(np.mean([r["dice"] for r in vo.values()]))
    print(write_result("ct_seg_volumes", title="CT liver segmentation on real 3D volumes with manual masks",
                       metrics=vmetrics, n=len(vo), unit="volume", command=cmd, synthetic=False, split_file=SPLIT.relative_to(ROOT),
                       subset="test", test_scored_count=args.test_scored_count, device=dev,
                       extra={"per_volume": vo, "model": str(args.model), "model_config": cfg, "note": note,
                              "ci_method": "none (n = 2 volumes)",
                              "old_default_same_cases": {"amos_ct_0013": 0.853, "dcmqi_ct": 0.933}}))
    print(json.dumps({k: v for k, v in metrics.items()}, indent=1), json.dumps(vmetrics, indent=1))
    if args.ship:  # the shipped bundle, with the chosen post-processing baked into its config
        dest = ROOT / "src" / "liverfib" / "assets" / "mri_seg_default"
        save_bundle(dest, model.net, **seg_bundle_fields(model.cfg, **model.info))
        print("shipped", dest)


def cmd_speed(args: argparse.Namespace) -> None:
    """CPU seconds per 100x256x256 CT-like volume, models timed alternately (median of --reps)."""
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    vol = (rng.normal(40, 200, (100, 256, 256)) - 300 * (rng.random((100, 256, 256)) < 0.3)).astype(np.float32)
    models = {m: liver_segmenter(m) for m in args.models}
    times: dict[str, list[float]] = {m: [] for m in args.models}
    for _ in range(args.reps):
        for m, model in models.items():
            t = time.time()
            model.segment(vol)
            times[m].append(time.time() - t)
    out = {m: float(np.median(v)) for m, v in times.items()}
    print(json.dumps({"seconds_median": out, "all": times, "threads": args.threads}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("split")
    tr = sub.add_parser("train")
    tr.add_argument("--out", type=Path, required=True)
    tr.add_argument("--img-size", type=int, default=256)
    tr.add_argument("--context", type=int, default=0, choices=(0, 1))
    tr.add_argument("--ct-window", type=float, nargs=2, default=None, metavar=("LO", "HI"))
    tr.add_argument("--steps", type=int, default=3000, help="upper bound; the time limit usually ends the run")
    tr.add_argument("--time-limit", type=float, default=2100.0, help="seconds; the LR schedule anneals by it")
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--n-synthetic", type=int, default=24)
    tr.add_argument("--threads", type=int, default=1)
    tr.add_argument("--include-val", action="store_true",
                    help="also train on the validation cases (the final fit of a recipe chosen on validation)")
    tr.add_argument("--init", default=None, help="checkpoint to fine-tune ('default' = the shipped model)")
    va = sub.add_parser("validate")
    va.add_argument("--model", required=True)
    va.add_argument("--json", type=Path)
    va.add_argument("--name", default=None, help="also write benchmarks/results/<name>_<variant>.json")
    va.add_argument("--variants", nargs="*", default=None, help="subset of the variants (default: all)")
    va.add_argument("--threads", type=int, default=1)
    te = sub.add_parser("test")
    te.add_argument("--model", required=True)
    te.add_argument("--variant", choices=sorted(VARIANTS), default=None)
    te.add_argument("--test-scored-count", type=int, default=None)
    te.add_argument("--ship", action="store_true")
    te.add_argument("--selection", default=None, help="one sentence: how this model was selected")
    te.add_argument("--threads", type=int, default=2)
    sp = sub.add_parser("speed")
    sp.add_argument("--models", nargs="+", default=["default"])
    sp.add_argument("--reps", type=int, default=3)
    sp.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    {"speed": cmd_speed, "split": cmd_split, "train": cmd_train, "validate": cmd_validate, "test": cmd_test}[args.cmd](args)


if __name__ == "__main__":
    main()
