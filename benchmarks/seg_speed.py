"""CPU inference speed of a 2D segmentation checkpoint.

usage: python benchmarks/seg_speed.py [--model default] [--threads 2] [--seconds 15]
Network alone at its input size (batch 1 and 8) and end to end (read, resize, network, resize back,
largest component) on demo/us; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import resource

import numpy as np
import torch
from speed import rate  # benchmarks/speed.py (scripts run with benchmarks/ on sys.path)

from liverfib.inference.segmenter import load_segmenter
from liverfib.io import list_images, read_image


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=15)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    seg = load_segmenter(a.model)
    s = seg.preprocess.config.img_size
    out = {"model": a.model, "img_size": s, "threads": a.threads, "tta": seg.tta}
    for b in (1, 8):
        x = torch.randn(b, 3, s, s)

        def run(x: torch.Tensor = x) -> None:
            with torch.inference_mode():
                seg.net(x)

        out[f"net_img_per_s_batch{b}"] = round(rate(run, b, a.seconds), 1)
    arrays = [read_image(p).array for p in list_images("demo/us")]
    out["end_to_end_img_per_s"] = round(rate(lambda: seg.predict_arrays(arrays), len(arrays), a.seconds), 1)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    out["load_avg_1min"] = round(float(np.round(__import__("os").getloadavg()[0], 2)), 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
