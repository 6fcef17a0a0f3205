"""Cache per-patch backbone features of every distinct image at native resolution (benchmark helper).

usage: python benchmarks/extract_patch_features.py DATA_DIR OUT.npz [--backbone tf_efficientnet_lite0]
       [--patch 192] [--stride 96] [--min-fan 0.95] [--threads 2]
Parenchyma-only inputs (issue 19): the fan is found (``detect_fan``), square patches of ``--patch``
pixels are tiled over it **without resizing** (the network sees the speckle at the scanner's own
pixel pitch), and only patches lying at least ``--min-fan`` inside the fan are kept. Each patch
gives the StagingNet pooled features (stages 1-3 + final). The npz keeps every patch row with its
image index and mean gray level, so pooling (mean / max / trimmed) is chosen later by
``cv_features.py`` on the pooled files this script also writes (``OUT`` holds the mean and the
mean+std pools per image).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from liverfib.dataset.audit import audit_folder
from liverfib.io import read_image
from liverfib.models.staging import StagingNet
from liverfib.preprocess.fan import detect_fan, to_uint8
from liverfib.preprocess.transforms import UltrasoundPreprocess


def patches_of(img: np.ndarray, size: int, stride: int, min_fan: float) -> list[np.ndarray]:
    fan = detect_fan(img)
    r0, c0, r1, c1 = fan.bbox
    out = []
    for r in range(r0, max(r0 + 1, r1 - size + 1), stride):
        for c in range(c0, max(c0 + 1, c1 - size + 1), stride):
            if fan.mask[r : r + size, c : c + size].mean() >= min_fan and r + size <= img.shape[0] and c + size <= img.shape[1]:
                out.append(img[r : r + size, c : c + size])
    if not out:  # tiny fan: the central square of the fan's box
        rc, cc = (r0 + r1) // 2, (c0 + c1) // 2
        r, c = max(0, min(rc - size // 2, img.shape[0] - size)), max(0, min(cc - size // 2, img.shape[1] - size))
        out.append(img[r : r + size, c : c + size])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--patch", type=int, default=192)
    ap.add_argument("--stride", type=int, default=96)
    ap.add_argument("--min-fan", type=float, default=0.95)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    audit = audit_folder(a.data)
    rows = audit.distinct_files()
    net = StagingNet(a.backbone, feature_stages=[1, 2, 3]).eval()
    t0 = time.time()
    pf, idx, gray, pooled = [], [], [], []
    for k, row in enumerate(rows):
        img = to_uint8(read_image(f"{a.data}/{row['path']}").array)
        ps = patches_of(img, a.patch, a.stride, a.min_fan)
        x = torch.from_numpy(np.stack([UltrasoundPreprocess.normalise(p) for p in ps]))
        with torch.inference_mode():
            f = net.pooled_features(x).numpy()
        pf.append(f.astype(np.float16))
        idx += [k] * len(ps)
        gray += [float(p.mean()) for p in ps]
        pooled.append(np.concatenate([f.mean(0), f.std(0)]))
        if (k + 1) % 50 == 0:
            print(f"{k + 1}/{len(rows)} {time.time() - t0:.0f}s patches {len(idx)}", flush=True)
    P = np.stack(pooled).astype(np.float32)
    meta = dict(
        paths=np.array([r["path"] for r in rows]),
        labels=np.array([r["label"] for r in rows]),
        clusters=np.array([r["cluster"] for r in rows]),
        sources=np.array([r["source"] for r in rows]),
        stages=np.array([1, 2, 3]),
        seconds=time.time() - t0,
    )
    d = P.shape[1] // 2
    # cv_features.py reads feats as (N, views, F); one view (no flip)
    np.savez_compressed(a.out, feats=P[:, None, :d], pooling="mean", **meta)
    np.savez_compressed(a.out.replace(".npz", "_meanstd.npz"), feats=P[:, None, :], pooling="patchmeanstd", **meta)
    np.savez_compressed(
        a.out.replace(".npz", "_patches.npz"), patch_feats=np.concatenate(pf), image_index=np.array(idx),
        gray=np.array(gray, np.float32), **meta
    )
    print("done", P.shape, len(idx), f"{time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
