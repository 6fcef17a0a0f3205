"""CPU inference speed and memory of a staging checkpoint.

usage: python benchmarks/speed.py [--model default|CKPT] [--threads 2] [--seconds 20] [--engine torch|onnx]
Reports images/s of the network alone at batch 1 and 32 (preprocessed 224² tensors), end-to-end
images/s of Predictor.predict_paths on demo/us (read + preprocess + network), and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from liverfib.inference.predictor import load_predictor
from liverfib.io import list_images


def rate(fn, n_per_call: int, seconds: float) -> float:
    fn()  # warm-up
    t0, calls = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        fn()
        calls += 1
    return calls * n_per_call / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--engine", default="torch", choices=["torch", "onnx"])
    ap.add_argument("--result", default=None, help="write benchmarks/results/<RESULT>.json (one result shape)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    pred = load_predictor(a.model, engine=a.engine)
    size = pred.preprocess.config.img_size
    out = {"model": a.model, "engine": a.engine, "threads": a.threads, "img_size": size}
    for bs in (1, 32):
        x = torch.randn(bs, 3, size, size)

        def run(x=x) -> None:
            with torch.inference_mode():
                pred._logits(x)

        out[f"net_images_per_s_batch{bs}"] = round(rate(run, bs, a.seconds), 1)
    files = list_images(Path(__file__).resolve().parents[1] / "demo" / "us") * 5
    out["end_to_end_images_per_s_batch32"] = round(
        rate(lambda: pred.predict_paths(files, batch_size=32), len(files), a.seconds), 1
    )
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["torch"] = torch.__version__
    print(json.dumps(out))
    if a.result:
        import os
        import sys

        from liverfib.evaluation.results import device_string, metric, write_result

        keys = ("net_images_per_s_batch1", "net_images_per_s_batch32", "end_to_end_images_per_s_batch32", "peak_rss_mb")
        print(write_result(
            a.result, title=f"US staging inference speed, {a.model} model, {a.engine} engine (no CI: one timed run)",
            metrics={k: metric(out[k]) for k in keys}, n=len(files), unit="image (demo/us x5 per end-to-end call)",
            command="python " + " ".join(sys.argv), synthetic=False, test_scored_count=0,
            device=device_string(a.threads) + f", load average {os.getloadavg()[0]:.1f} at the end",
            extra={"seconds_per_measure": a.seconds, "torch": torch.__version__, "img_size": size,
                   "ci_method": "none: throughput of one timed run"}))


if __name__ == "__main__":
    main()
