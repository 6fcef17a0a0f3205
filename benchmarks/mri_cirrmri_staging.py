"""SYNTHETIC CirrMRI600+-layout 3-grade staging benchmark (per slice and per patient), T1 and T2.

Runs exactly what a user runs, through the pipeline twins of the CLI:

  liverfib phantom mri --layout cirrmri --out DATA --n N --seed SEED
  liverfib train-mri --data DATA --labels DATA/labels.csv --sequence T1 --out OUT/T1 --steps STEPS
  liverfib train-mri --data DATA --labels DATA/labels.csv --sequence T2 --out OUT/T2 --steps STEPS

and writes test accuracy per slice and per patient (95 % CIs from a bootstrap over patients) as
result JSONs benchmarks/results/mri_cirrmri_synthetic_{T1,T2}.json. The data are SYNTHETIC: the numbers show that the pipeline
learns, nothing about patients (and are not comparable with CirrhosisStage's 72.8 % / 63.8 %).

  nice -n 10 .venv/bin/python benchmarks/mri_cirrmri_staging.py --out runs/mri_cirrmri
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from liverfib.evaluation.results import metric, write_result
from liverfib.pipeline.mri import run_mri_phantom
from liverfib.pipeline.mri_train import run_mri_train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/mri_cirrmri"))
    ap.add_argument("--n", type=int, default=150, help="cirrhotic subjects (60/20/20 train/valid/test)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--encoder", default="small_cnn")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("results"))
    args = ap.parse_args()

    data = args.out / "data"
    t0 = time.time()
    if not (data / "labels.csv").is_file():
        run_mri_phantom(data, layout="cirrmri", n_subjects=args.n, seed=args.seed)
    gen_s = time.time() - t0
    print(f"data: {data} ({gen_s:.0f} s)", flush=True)
    command = (f"nice -n 10 .venv/bin/python benchmarks/mri_cirrmri_staging.py --out {args.out} --n {args.n} "
               f"--seed {args.seed} --steps {args.steps} --encoder {args.encoder}")
    for seq in ("T1", "T2"):
        t = time.time()
        result, text = run_mri_train(data, args.out / seq, layout="cirrmri", sequence=seq, labels_csv=data / "labels.csv",
                                     encoder=args.encoder, steps=args.steps, seed=args.seed, n_boot=args.n_boot, threads=1)
        print(text, flush=True)
        path = write_result(
            f"mri_cirrmri_synthetic_{seq}",
            title=f"CirrMRI600+ layout, 3 grades, {seq}, annotation masks",
            metrics={
                "slice_accuracy": metric(result["test_slice_accuracy"], result["test_slice_accuracy_ci95"]),
                "patient_accuracy": metric(result["test_patient_accuracy"], result["test_patient_accuracy_ci95"]),
                "slice_macro_auc": metric(result["test_slice_macro_auc"]),
                "patient_macro_auc": metric(result["test_patient_macro_auc"]),
            },
            n=result["n_scans"]["test"], unit="patient", groups=result["n_scans"]["test"],
            split_file=None, subset="test", test_scored_count=1, command=command, synthetic=True,
            device="cpu, 1 torch thread", results_dir=args.results,
            extra={"n_slices": result["n_slices"], "n_scans": result["n_scans"], "encoder": args.encoder,
                   "weights": "random init", "steps": args.steps, "selected_step": result["selected_step"],
                   "val_slice_accuracy": result["val_slice_accuracy"],
                   "test_patient_confusion_matrix": result["test_patient_confusion_matrix"],
                   "train_seconds": round(time.time() - t, 1), "data_seconds": round(gen_s, 1),
                   "ci_method": "percentile bootstrap over patients (slices of a patient resampled together)",
                   "data": f"SYNTHETIC: liverfib phantom mri --layout cirrmri --n {args.n} --seed {args.seed}"},
        )
        print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
