"""CAM faithfulness and shortcut check of a staging model on a split's distinct images.

usage: python benchmarks/explain_faithfulness.py [--model default] [--split runs/splits/grouped.csv]
       [--subset test] [--method gradcam] [--road-n 30] [--liver-model default|none] [--out runs/explain_faith]
Per source (device): mean share of CAM mass inside the ultrasound fan and inside the predicted liver
(95 % bootstrap CIs over images), and ROAD-combined scores of the CAM vs smooth random maps on the
first ``--road-n`` images per source (ROAD is slow on CPU). Writes faithfulness.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from liverfib.dataset.split import read_split_csv
from liverfib.evaluation.resampling import bootstrap
from liverfib.explain import cam_statistics, compute_cams
from liverfib.explain.faithfulness import road_scores
from liverfib.inference.predictor import load_predictor
from liverfib.io import read_image
from liverfib.preprocess.fan import detect_fan, to_uint8


def ci(values: list[float]) -> dict:
    ci = bootstrap(values)
    return {"mean": round(float(np.mean(values)), 3), "ci95": [round(ci.low, 3), round(ci.high, 3)], "n": len(values)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/liver-us-fibrosis")
    ap.add_argument("--model", default="default")
    ap.add_argument("--split", default="runs/splits/grouped.csv")
    ap.add_argument("--subset", default="test")
    ap.add_argument("--method", default="gradcam")
    ap.add_argument("--road-n", type=int, default=30)
    ap.add_argument("--liver-model", default="default")
    ap.add_argument("--out", default="runs/explain_faith")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = [r for r in read_split_csv(Path(args.split)) if r["split"] == args.subset]
    seen, distinct = set(), []
    from liverfib.dataset.fingerprint import file_sha256
    from liverfib.io import resolve_file

    for r in rows:
        sha = file_sha256(resolve_file(Path(args.data) / r["path"]))
        if sha not in seen:
            seen.add(sha)
            distinct.append(r)
    predictor = load_predictor(args.model)
    arrays = [read_image(Path(args.data) / r["path"]).array for r in distinct]
    cams = compute_cams(predictor, arrays, method=args.method)
    livers = [None] * len(arrays)
    if args.liver_model != "none":
        from liverfib.inference.segmenter import load_segmenter

        livers = load_segmenter(args.liver_model).predict_arrays(arrays)
    stats = [cam_statistics(c.heatmap, fan_mask=detect_fan(to_uint8(a)).mask, liver_mask=lv)
             for a, c, lv in zip(arrays, cams, livers, strict=True)]
    result: dict = {"split": f"{args.split} subset={args.subset} ({len(distinct)} distinct images)",
                    "model": args.model, "method": args.method, "device": "cpu", "per_source": {}}
    for src in sorted({r["source"] for r in distinct}):
        idx = [i for i, r in enumerate(distinct) if r["source"] == src]
        entry = {"n": len(idx), "mass_in_fan": ci([stats[i]["mass_in_fan"] for i in idx])}
        liver = [stats[i]["mass_in_liver"] for i in idx if stats[i]["mass_in_liver"] is not None]
        if liver:
            entry["mass_in_liver"] = ci(liver)
            entry["liver_found"] = round(float(np.mean([livers[i].any() for i in idx])), 3)
            entry["liver_fraction_of_image"] = ci([float(livers[i].mean()) for i in idx])
        sub = idx[: args.road_n]
        if sub:
            road = road_scores(predictor, [arrays[i] for i in sub], [cams[i] for i in sub])
            entry["road"] = {k: ci(v.tolist()) for k, v in road.items()}
        result["per_source"][src] = entry
        print(src, json.dumps(entry), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "faithfulness.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
