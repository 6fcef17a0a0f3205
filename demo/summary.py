"""Print what `make demo` produced: one row per workflow, with where to look.

usage: python demo/summary.py runs/demo
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def main(out: Path) -> None:
    rows: list[tuple[str, str, str]] = []
    preds = out / "us_predictions.csv"
    if preds.is_file():
        with preds.open(newline="") as fh:
            stages = [r["stage"] for r in csv.DictReader(fh)]
        rows.append(("ultrasound staging", f"{len(stages)} images: " + " ".join(stages), str(preds)))
    explain = out / "explain"
    if explain.is_dir():
        rows.append(("Grad-CAM", f"{len(list(explain.glob('*overlay*.png')))} overlays", f"{explain}/"))
    seg = out / "segment"
    if seg.is_dir():
        rows.append(("US liver segmentation", f"{len(list(seg.glob('*_mask.png')))} masks + overlays", f"{seg}/"))
    mre = out / "mre" / "mre.json"
    if mre.is_file():
        m = json.loads(mre.read_text())
        rows.append(("MRE (SYNTHETIC phantom)", f"{m['mean_stiffness_kpa']:.2f} kPa -> {m['stage']}", str(mre.parent) + "/"))
    ct = out / "ct" / "segment.json"
    if ct.is_file():
        c = json.loads(ct.read_text())
        rows.append(("CT 3D liver segmentation", f"liver {c['volume_ml']:.0f} ml in the scan (workflow demo)",
                     str(c["results"][0]["mask"])))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    print()
    print(f"{'workflow':{w[0]}}  {'result':{w[1]}}  where to look")
    print(f"{'-' * w[0]}  {'-' * w[1]}  {'-' * w[2]}")
    for r in rows:
        print(f"{r[0]:{w[0]}}  {r[1]:{w[1]}}  {r[2]}")
    print("\nResearch use only. The MRE exam is a generated phantom (synthetic); the CT scan was in the")
    print("segmenter's training data, so it shows the workflow, not accuracy ('liverfib models' lists the")
    print("measured figures).")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo"))
