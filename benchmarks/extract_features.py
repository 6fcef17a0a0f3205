"""Cache pooled backbone features of every distinct image of a labelled folder (benchmark helper).

usage: python benchmarks/extract_features.py DATA_DIR OUT.npz --backbone tf_efficientnet_lite0
       [--img-size 224] [--no-fan] [--nlm] [--stages 1 2 3] [--liver-roi default|CKPT] [--weights PT]
Features are the raw pooled features of StagingNet (final + listed stages) for the image and its
horizontal flip. Rows follow the audit's file table (one row per distinct content).
``--liver-roi`` crops each image to the bounding box (+10 % margin) of the liver found by the given
segmenter before preprocessing (full frame where none is found): the liver-ROI staging ablation.
``--weights`` loads a backbone state_dict (``StagingNet.encoder``, e.g. from ssl_pretrain.py) over
the ImageNet weights.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from liverfib.dataset.audit import audit_folder
from liverfib.io import read_image
from liverfib.models.staging import StagingNet
from liverfib.preprocess.transforms import PreprocessConfig, UltrasoundPreprocess


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--no-fan", action="store_true")
    ap.add_argument("--nlm", action="store_true")
    ap.add_argument("--pooling", default="mean")
    ap.add_argument("--stages", type=int, nargs="*", default=[1, 2, 3])
    ap.add_argument("--liver-roi", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default=None, help="backbone state_dict to load (strict)")
    a = ap.parse_args()
    segmenter = None
    if a.liver_roi:
        from liverfib.inference.segmenter import load_segmenter

        segmenter = load_segmenter(a.liver_roi)
    n_roi = 0
    torch.set_num_threads(a.threads)
    audit = audit_folder(a.data)
    rows = audit.distinct_files()
    pre = UltrasoundPreprocess(
        PreprocessConfig(img_size=a.img_size, fan_mask=not a.no_fan, fan_crop=not a.no_fan, nlm=a.nlm)
    )
    net = StagingNet(a.backbone, feature_stages=a.stages, pooling=a.pooling).eval()
    if a.weights:
        net.encoder.load_state_dict(torch.load(a.weights, map_location="cpu"), strict=True)
    t0 = time.time()
    feats = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        x = torch.from_numpy(np.stack(batch))
        with torch.inference_mode():
            f = net.pooled_features(torch.cat([x, x.flip(-1)]))
        n = len(batch)
        feats.append(torch.stack([f[:n], f[n:]], 1).numpy())
        batch.clear()

    for k, row in enumerate(rows):
        array = read_image(f"{a.data}/{row['path']}").array
        if segmenter is not None:
            mask = segmenter.predict(array)
            if mask.any():
                n_roi += 1
                rr, cc = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                mr, mc = int(0.1 * (rr[-1] - rr[0])) + 4, int(0.1 * (cc[-1] - cc[0])) + 4
                array = array[max(rr[0] - mr, 0) : rr[-1] + mr + 1, max(cc[0] - mc, 0) : cc[-1] + mc + 1]
        batch.append(pre(array))
        if len(batch) == 32:
            flush()
            print(f"{k + 1}/{len(rows)} {time.time() - t0:.0f}s", flush=True)
    if batch:
        flush()
    F = np.concatenate(feats)
    np.savez_compressed(
        a.out,
        feats=F.astype(np.float32),
        paths=np.array([r["path"] for r in rows]),
        labels=np.array([r["label"] for r in rows]),
        clusters=np.array([r["cluster"] for r in rows]),
        sources=np.array([r["source"] for r in rows]),
        stages=np.array(a.stages),
        pooling=a.pooling,
        seconds=time.time() - t0,
        liver_roi=str(a.liver_roi),
        weights=str(a.weights),
        n_roi=n_roi,
    )
    print("done", F.shape, f"{time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
