"""SYNTHETIC multi-phase MRI staging benchmark (LiQA layout): learns? degrades gracefully?

Writes two SYNTHETIC LiQA-layout datasets (different seeds => different subjects), prepares liver
crops through the normal loaders (masks from mask_GED4), trains the fusion network on CPU and
evaluates S4 vs S1-S3 and S2-S4 vs S1 (AUC, accuracy; 95 % bootstrap CIs over held-out subjects,
via liverfib.evaluation.evaluate_probabilities) with all phases, each phase dropped, only GED4,
only non-contrast phases, and extra misalignment. Synthetic numbers say nothing about real data.

  nice -n 10 .venv/bin/python benchmarks/mri_staging.py --out runs/mri_staging [--ship]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from liverfib.evaluation.metrics import evaluate_probabilities
from liverfib.models.bundle import save_bundle
from liverfib.mri.exam import LIQA_PHASES
from liverfib.mri.layouts import list_liqa_exams
from liverfib.mri.staging import StagingConfig, cumulative_to_stage_probs, staging_bundle_fields
from liverfib.mri.staging_train import predict_cumulative, prepare_exam, stack_crops, train_staging
from liverfib.mri.synthetic import write_liqa_dataset
from liverfib.pipeline._mri_common import LazySegmenter


def dataset(root: Path, n: int, seed: int, shape: tuple[int, int, int], cfg: StagingConfig):
    if not (root / "synthetic_manifest.csv").is_file():
        t = time.time()
        write_liqa_dataset(root, n, seed=seed, shape=shape)
        print(f"wrote {n} synthetic subjects to {root} ({time.time() - t:.0f} s)", flush=True)
    cache = root / f"crops_{cfg.n_stacks}_{cfg.crop_size}_{int(cfg.mask_input)}_{int(cfg.register_phases)}.npz"
    if cache.is_file():
        z = np.load(cache)
        return z["x"], z["present"], z["liver"], z["stages"], list(z["ids"])
    exams = list_liqa_exams(root)
    seg = LazySegmenter("default")  # only for exams whose mask is not on the reference phase
    crops = [prepare_exam(e, cfg, seg_model=seg)[0] for e in exams]
    x, present, liver = stack_crops(crops)
    stages = np.array([e.stage for e in exams])
    ids = np.array([e.case_id for e in exams])
    np.savez(cache, x=x, present=present, liver=liver, stages=stages, ids=ids)
    return x, present, liver, stages, list(ids)


def evaluate(cum: np.ndarray, stages: np.ndarray, ids: list[str], n_boot: int) -> dict:
    probs = cumulative_to_stage_probs(cum)
    r = evaluate_probabilities([f"F{s}" for s in stages], probs, ["F1", "F2", "F3", "F4"], groups=ids, n_boot=n_boot)
    acc_s4 = float(np.mean((cum[:, 2] >= 0.5) == (stages == 4)))
    acc_s2 = float(np.mean((cum[:, 0] >= 0.5) == (stages >= 2)))
    b = r["binary"]
    return {
        "n": r["n"],
        "auc_s4_vs_s1_s3": r["auc_f4"], "auc_s4_ci95": r["ci95"]["auc_f4"],
        "acc_s4_vs_s1_s3": acc_s4,
        "auc_s2_s4_vs_s1": r["auc_ge_f2"], "auc_s2_s4_ci95": r["ci95"]["auc_ge_f2"],
        "acc_s2_s4_vs_s1": acc_s2,
        "stage_accuracy": r["accuracy"], "stage_accuracy_ci95": r["ci95"]["accuracy"],
        "sens_spec_s4": [b["f4"]["sensitivity"], b["f4"]["specificity"]] if b.get("f4") else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n-train", type=int, default=96)
    ap.add_argument("--n-test", type=int, default=64)
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--fusion", default="consensus")
    ap.add_argument("--encoder", default="small_cnn")
    ap.add_argument("--cam-weight", type=float, default=0.5)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--time-limit", type=float, default=420)
    ap.add_argument("--ship", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = StagingConfig(fusion=args.fusion, encoder=args.encoder)
    shape = (24, 64, 64)
    data_root = args.out.parent / "mri_synthetic_liqa"
    xtr, ptr, ltr, str_, _ = dataset(data_root / "train", args.n_train, 11, shape, cfg)
    xte, pte, lte, ste, ids = dataset(data_root / "test", args.n_test, 22, shape, cfg)
    print(f"train {len(xtr)} test {len(xte)} subjects (SYNTHETIC)", flush=True)
    t0 = time.time()
    net, log = train_staging(xtr, ptr, ltr, str_, cfg, steps=args.steps, cam_weight=args.cam_weight,
                             log=lambda m: print(m, flush=True), time_limit_s=args.time_limit)
    train_s = time.time() - t0

    results: dict = {"data": "SYNTHETIC (liverfib.mri.synthetic); says nothing about real MRI",
                     "device": "CPU, 1 torch thread, shared 2-core machine", "train_seconds": train_s,
                     "steps_done": len(log), "config": cfg.model_dump(mode="json"), "args": {k: str(v) for k, v in vars(args).items()},
                     "weights": "random init" if cfg.encoder == "small_cnn" else "ImageNet lite0 (offline)",
                     "conditions": {}}
    rng = np.random.default_rng(0)

    def run(name: str, present: np.ndarray, x: np.ndarray = xte) -> None:
        keep = present.any(axis=1)
        cum, _ = predict_cumulative(net, x[keep], present[keep])
        res = evaluate(cum, ste[keep], [i for i, k in zip(ids, keep, strict=True) if k], args.n_boot)
        res["mean_phases_used"] = float(present[keep].sum(1).mean())
        results["conditions"][name] = res
        print(name, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}, flush=True)

    run("as_acquired", pte)
    for p, phase in enumerate(LIQA_PHASES):
        q = pte.copy()
        q[:, p] = False
        run(f"drop_{phase}", q)
    only = np.zeros_like(pte)
    only[:, LIQA_PHASES.index("GED4")] = pte[:, LIQA_PHASES.index("GED4")]
    run("only_GED4", only)
    nc = pte.copy()
    for ph in ("GED1", "GED2", "GED3", "GED4"):
        nc[:, LIQA_PHASES.index(ph)] = False
    run("non_contrast_only_T1_T2_DWI", nc)
    xs = xte.copy()
    for i in range(len(xs)):
        for p in range(len(LIQA_PHASES)):
            if LIQA_PHASES[p] != "GED4":
                dy, dx = rng.integers(-5, 6, 2)
                xs[i, p] = np.roll(xs[i, p], (int(dy), int(dx)), axis=(-2, -1))
    run("extra_misalignment_5px", pte, xs)
    (args.out / "metrics.json").write_text(json.dumps(results, indent=2, default=str))
    command = "benchmarks/mri_staging.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())
    fields = staging_bundle_fields(net, data="SYNTHETIC only", synthetic=True,
                                   heldout=results["conditions"]["as_acquired"], command=command)
    save_bundle(args.out / "model", net, **fields)
    if args.ship:
        dest = Path(__file__).resolve().parents[1] / "src" / "liverfib" / "assets" / "mri_staging_synthetic"
        save_bundle(dest, net, **fields)
        print("shipped", dest)


if __name__ == "__main__":
    main()
