"""SYNTHETIC CirrMRI600+-layout 3-grade staging benchmark (per slice and per patient), T1 and T2.

Runs exactly what a user runs, through the pipeline twins of the CLI:

  liverfib phantom mri --layout cirrmri --out DATA --n N --seed SEED
  liverfib train-mri --data DATA --labels DATA/labels.csv --sequence T1 --out OUT/T1 --steps STEPS
  liverfib train-mri --data DATA --labels DATA/labels.csv --sequence T2 --out OUT/T2 --steps STEPS

and collects test accuracy per slice and per patient (95 % CIs from a bootstrap over patients) into
benchmarks/mri_cirrmri_results.json. The data are SYNTHETIC: the numbers show that the pipeline
learns, nothing about patients (and are not comparable with CirrhosisStage's 72.8 % / 63.8 %).

  nice -n 10 .venv/bin/python benchmarks/mri_cirrmri_staging.py --out runs/mri_cirrmri
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

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
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("mri_cirrmri_results.json"))
    args = ap.parse_args()

    data = args.out / "data"
    t0 = time.time()
    if not (data / "labels.csv").is_file():
        run_mri_phantom(data, layout="cirrmri", n_subjects=args.n, seed=args.seed)
    gen_s = time.time() - t0
    print(f"data: {data} ({gen_s:.0f} s)", flush=True)
    rows = {}
    for seq in ("T1", "T2"):
        t = time.time()
        result, text = run_mri_train(data, args.out / seq, layout="cirrmri", sequence=seq, labels_csv=data / "labels.csv",
                                     encoder=args.encoder, steps=args.steps, seed=args.seed, n_boot=args.n_boot, threads=1)
        print(text, flush=True)
        rows[seq] = {k: result[k] for k in ("n_scans", "n_slices", "selected_step", "val_slice_accuracy",
                                            "test_slice_accuracy", "test_slice_accuracy_ci95", "test_patient_accuracy",
                                            "test_patient_accuracy_ci95", "test_slice_macro_auc",
                                            "test_patient_macro_auc", "test_patient_confusion_matrix")}
        rows[seq]["seconds"] = round(time.time() - t, 1)
    out = {
        "note": "SYNTHETIC CirrMRI600+-layout data (liverfib.mri.synthetic); not real MRI",
        "command": f"nice -n 10 .venv/bin/python benchmarks/mri_cirrmri_staging.py --out {args.out} --n {args.n} "
                   f"--seed {args.seed} --steps {args.steps} --encoder {args.encoder}",
        "data_seconds": round(gen_s, 1), "encoder": args.encoder, "steps": args.steps, "results": rows,
    }
    args.results.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
