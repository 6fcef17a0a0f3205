"""Turn cached backbone features (benchmarks/extract_features.py .npz) into a feature table that
``liverfib radiomics train --fuse`` can stack with radiomics.

usage: python benchmarks/radiomics_dl_table.py runs/features/lite0_s123.npz \\
           ../shared/data/liver-us-fibrosis runs/features/lite0_s123.parquet
Rows: the .npz rows (one per distinct image); ``path`` = DATA_DIR/<relative path>; features =
pooled features of the image and its horizontal flip, averaged (as in benchmarks/cv_features.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from liverfib.radiomics import write_feature_table


def main() -> None:
    npz, data, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    d = np.load(npz)
    feats = d["feats"].mean(axis=1)  # (N, D): image and flip averaged
    names = [f"dl_{j:04d}" for j in range(feats.shape[1])]
    rows = [
        {"path": str(data / p), **dict(zip(names, map(float, f), strict=True))}
        for p, f in zip(d["paths"], feats, strict=True)
    ]
    write_feature_table(rows, out, f"source: {npz}\n")
    print(f"wrote {out}: {len(rows)} rows x {len(names)} features")


if __name__ == "__main__":
    main()
