"""Score a staging model ONCE on the grouped test split and write its result JSON (issue 16).

usage: python benchmarks/us_staging_result.py --model default \
           --data ../shared/data/liver-us-fibrosis --split benchmarks/splits/us_grouped.csv \
           --name us_staging_default [--subset test|val] [--n-boot 1000]
``--subset val`` scores the validation part instead (the part C and the thresholds were chosen on, so
not an independent figure; it does not count as a test scoring).
The test subset is scored by ``liverfib evaluate`` (copies counted once, cluster-bootstrap CIs over
the split's same-scan groups); ``test_scored_count`` in an existing result of the same name is carried
forward and increased, so a second scoring is visible.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from liverfib.evaluation.results import device_string, metric, write_result
from liverfib.models.assets import resolve_model
from liverfib.models.bundle import load_bundle
from liverfib.pipeline import run_evaluate

KEYS = ("accuracy", "balanced_accuracy", "macro_auc", "auc_ge_f2", "auc_ge_f3", "auc_f4", "kappa_quadratic", "ece")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--name", default="us_staging_default")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--subset", choices=("test", "val"), default="test")
    a = ap.parse_args()
    bundle = load_bundle(resolve_model(a.model, "us-staging"))
    m, text = run_evaluate(model=a.model, data_dir=a.data, split_csv=a.split, subset=a.subset, n_boot=a.n_boot,
                           out_dir=a.out)
    print(text)
    extra = bundle.extra
    meta = {"train_seconds": extra.get("train_seconds"), "selected_C": extra.get("selected_C"),
            "weights_origin": extra.get("weights_origin"), "n_train": (bundle.meta.get("training_data") or {}).get("n_train"),
            "thresholds": extra.get("thresholds")}
    what = "test split" if a.subset == "test" else "validation split (used to choose C and thresholds)"
    write_result(
        a.name,
        title=f"Shipped US staging model on the grouped (same-scan) {what}, distinct images",
        metrics={k: metric(m[k], m["ci95"].get(k)) for k in KEYS if m.get(k) is not None},
        n=m["n"],
        unit="distinct image",
        groups=m["n_groups"],
        split_file=a.split,
        subset=a.subset,
        test_scored_count=None if a.subset == "test" else 0,
        command="python benchmarks/us_staging_result.py " + " ".join(sys.argv[1:]),
        synthetic=False,
        device=device_string(2),
        extra={
            "per_source": {
                s: {"n": v["n"], "groups": v.get("groups"), "accuracy": v["accuracy"], "accuracy_ci": v.get("accuracy_ci95")}
                for s, v in (m.get("per_source") or {}).items()
            },
            "model": str(a.model),
            "train_seconds_2_cores": meta["train_seconds"],
            "train_note": "2 torch threads on a 2-core machine shared with other jobs (load 15-20): an upper bound",
            "selected_C": meta["selected_C"],
            "weights": meta["weights_origin"],
            "n_train_distinct": meta["n_train"],
            "thresholds": meta["thresholds"],
            "thresholds_from": "validation split, train-only head (the head that ships)",
            "ci_method": f"percentile bootstrap over same-scan groups, {a.n_boot} resamples",
        },
    )


if __name__ == "__main__":
    main()
