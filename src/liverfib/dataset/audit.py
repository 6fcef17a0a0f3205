"""Dataset audit: copies, near-duplicates, label conflicts and source/label confounding.

Method (documented in README):
1. Every file is resolved (symlinks and link stubs followed) and hashed (SHA-256): equal hashes are
   byte-identical copies.
2. Each distinct content is decoded once; equal decoded pixels are pixel-identical images.
3. Same-scan frames ("near-duplicates"). Three similarities between distinct images: Pearson
   correlation of the 24×24 fan-crop descriptor (``pixel``), CNN cosine of frozen ImageNet
   EfficientNet-Lite0 features (``cnn``, :mod:`liverfib.dataset.embedding`) and a 64-bit DCT
   perceptual hash (``phash``, reported only). Two images are linked when
   ``pixel >= 0.85`` or (``cnn >= 0.82`` and ``pixel >= 0.50``) or (``pixel >= 0.80`` and
   ``cnn >= 0.78``); clusters are the
   connected components of the links ("when unsure, group more"). The rule comes from the similarity
   study in BENCHMARKS.md §0 (``benchmarks/us_similarity.py``, contact sheets in
   benchmarks/figures/): the old ``pixel >= 0.90`` rule left frames of one scan at 0.85–0.90 on both
   sides of a split. The audit reports the pairs per similarity band of each measure.
4. Acquisition source: images grouped by encoding, pixel grid and channel layout; per-source fan
   geometry and burned-in text are reported. Cramér's V between source and label over distinct
   images measures how well the device alone predicts the label.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.dataset.fingerprint import ImageFingerprint
from liverfib.dataset.inventory import Duplicates, find_duplicates, take_inventory
from liverfib.dataset.similarity import (
    DEFAULT_NEAR_THRESHOLD,
    SIMILARITY_BANDS,
    GroupingRule,
    link_components,
    near_pairs,
)
from liverfib.errors import InputError
from liverfib.io import LabelledItem, list_labelled

__all__ = [
    "AUDIT_JSON_KEYS",
    "AuditResult",
    "DEFAULT_NEAR_THRESHOLD",
    "GroupingRule",
    "SIMILARITY_BANDS",
    "audit_items",
    "audit_folder",
    "cramers_v",
]

#: Keys of the audit JSON that are a stable contract (tested); others may be added.
AUDIT_JSON_KEYS = frozenset(
    {
        "n_files",
        "n_unreadable",
        "labels",
        "exact_duplicate_groups",
        "n_unique_exact",
        "near_duplicate_clusters",
        "n_clusters",
        "similarity_bands",
        "largest_cluster",
        "cross_label_conflicts",
        "sources",
        "source_label_cramers_v",
        "verdict",
    }
)
#: Cramér's V above which the audit warns that the label is predictable from the source.
CONFOUNDING_WARN_V = 0.3


@dataclass
class AuditResult:
    """Audit figures (``summary``, JSON-ready) plus the per-file table used by ``split``."""

    summary: dict[str, Any]
    files: list[dict[str, Any]] = field(default_factory=list)
    fingerprints: dict[str, ImageFingerprint] = field(default_factory=dict)
    #: unit CNN embedding ``(EMBEDDING_DIM,)`` per pixel_sha1 (empty when the rule does not use it)
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)

    def distinct_files(self) -> list[dict[str, Any]]:
        """The first file row of each distinct content (sha256), in file order: copies dropped."""
        first: dict[str, dict[str, Any]] = {}
        for row in self.files:
            first.setdefault(row["sha256"], row)
        return list(first.values())


def cramers_v(a: list[str], b: list[str]) -> float:
    """Cramér's V of two categorical variables (0 = independent, 1 = one determines the other)."""
    from scipy.stats.contingency import association

    ua, ub = sorted(set(a)), sorted(set(b))
    if len(ua) < 2 or len(ub) < 2:
        return 0.0
    table = np.zeros((len(ua), len(ub)), dtype=np.int64)
    ia = {v: i for i, v in enumerate(ua)}
    ib = {v: i for i, v in enumerate(ub)}
    for x, y in zip(a, b, strict=True):
        table[ia[x], ib[y]] += 1
    return float(association(table, method="cramer"))


def audit_items(
    items: list[LabelledItem],
    *,
    grouping: GroupingRule | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Audit a labelled collection (see module docstring)."""
    rule = grouping or GroupingRule()
    if not items:
        raise InputError("nothing to audit: the collection is empty")
    inv = take_inventory(items, embed=rule.use_cnn, progress=progress)
    fps = inv.fingerprints
    good = [(i, s) for i, s in enumerate(inv.sha_of) if s is not None and s in fps]
    if not good:
        raise InputError(
            "no readable image in the collection; see the unreadable list: " + inv.unreadable[0]["error"]
        )
    dups = find_duplicates(items, good, fps)
    by_sha = dups.by_sha
    cluster_of_sha, bands, unit = _cluster(dups, inv.raw_embeddings, fps, rule)
    source_keys, source_name = _source_names(by_sha, fps)
    files = _file_rows(items, good, fps, cluster_of_sha, source_name)
    labels = sorted({it.label for it in items})
    distinct_label = {s: items[idx[0]].label for s, idx in by_sha.items()}  # first file's label
    v = cramers_v([source_name[fps[s].source_key] for s in by_sha], [distinct_label[s] for s in by_sha])
    clusters, clusters_per_label = _cluster_tables(files, cluster_of_sha, by_sha)
    files_per_label = Counter(items[i].label for i, _ in good)
    warn = v >= CONFOUNDING_WARN_V
    summary: dict[str, Any] = {
        "n_files": len(items),
        "n_unreadable": len(inv.unreadable),
        "unreadable": inv.unreadable,
        "n_link_files": int(inv.n_links),
        "labels": {
            lab: {
                "files": files_per_label.get(lab, 0),
                "unique_clusters": clusters_per_label.get(lab, 0),
                "distinct_images": sum(1 for s in by_sha if distinct_label[s] == lab),
            }
            for lab in labels
        },
        "exact_duplicate_groups": dups.exact_groups,
        "n_exact_duplicate_groups": len(dups.exact_groups),
        "n_unique_exact": len(by_sha),
        "pixel_duplicate_groups": dups.pixel_groups,
        "n_unique_pixels": len(dups.by_pixel),
        "near_duplicate_threshold": rule.pixel,
        "grouping_rule": asdict(rule),
        "grouping": rule.describe(),
        "similarity_bands": bands,
        **clusters,
        "sources": _source_rows(source_keys, source_name, by_sha, fps, distinct_label, labels),
        "source_label_cramers_v": round(v, 4),
        "confounding_warning": warn,
        "verdict": _verdict(len(items), len(by_sha), clusters["n_clusters"], v, warn),
    }
    return AuditResult(summary=summary, files=files, fingerprints=fps, embeddings=unit)


def _cluster(
    dups: Duplicates, raw: dict[str, np.ndarray], fps: dict[str, ImageFingerprint], rule: GroupingRule
) -> tuple[dict[str, str], dict[str, list[dict[str, Any]]], dict[str, np.ndarray]]:
    """Near-duplicate cluster per sha256 (over distinct pixel contents), similarity bands, and the
    unit embedding per pixel_sha1 (empty without CNN)."""
    by_pixel = dups.by_pixel
    pixel_keys = list(by_pixel)
    desc = np.stack([fps[by_pixel[p][0]].descriptor for p in pixel_keys])
    hashes = np.stack([fps[by_pixel[p][0]].phash for p in pixel_keys])
    embeddings = None
    if rule.use_cnn:
        from liverfib.dataset.embedding import normalise_embeddings

        embeddings = normalise_embeddings(np.stack([raw[by_pixel[p][0]] for p in pixel_keys]))
    links, bands = near_pairs(desc, hashes, embeddings, rule)
    comp = link_components(len(pixel_keys), links)
    cluster_of_pixel = {p: f"c{int(c):05d}" for p, c in zip(pixel_keys, comp, strict=True)}
    cluster_of_sha = {s: cluster_of_pixel[fps[s].pixel_sha1] for s in dups.by_sha}
    unit = {} if embeddings is None else dict(zip(pixel_keys, embeddings, strict=True))
    return cluster_of_sha, bands, unit


def _source_names(by_sha: dict[str, list[int]], fps: dict[str, ImageFingerprint]) -> tuple[list[str], dict[str, str]]:
    """Source fingerprints, largest first (ties by fingerprint, not hash order), and their names S1, S2, ..."""
    source_keys = sorted(
        {fps[s].source_key for s in by_sha}, key=lambda k: (-sum(fps[s].source_key == k for s in by_sha), k)
    )
    return source_keys, {k: f"S{n + 1}" for n, k in enumerate(source_keys)}


def _file_rows(
    items: list[LabelledItem],
    good: list[tuple[int, str]],
    fps: dict[str, ImageFingerprint],
    cluster_of_sha: dict[str, str],
    source_name: dict[str, str],
) -> list[dict[str, Any]]:
    """One row per readable file: path, label, patient, sha256, cluster, source."""
    return [
        {
            "path": items[i].rel,
            "label": items[i].label,
            "patient": items[i].patient,
            "sha256": s,
            "cluster": cluster_of_sha[s],
            "source": source_name[fps[s].source_key],
        }
        for i, s in good
    ]


def _cluster_tables(
    files: list[dict[str, Any]], cluster_of_sha: dict[str, str], by_sha: dict[str, list[int]]
) -> tuple[dict[str, Any], Counter[str]]:
    """Summary fields on clusters (largest, multi-image clusters, count, cross-label conflicts) and
    the number of clusters per label."""
    cluster_labels: dict[str, set[str]] = defaultdict(set)
    cluster_files: dict[str, list[str]] = defaultdict(list)
    for row in files:
        cluster_labels[row["cluster"]].add(row["label"])
        cluster_files[row["cluster"]].append(row["path"])
    conflicts = [
        {"cluster": c, "labels": sorted(ls), "files": cluster_files[c][:20]}
        for c, ls in cluster_labels.items()
        if len(ls) > 1
    ]
    clusters_per_label: Counter[str] = Counter()
    for ls in cluster_labels.values():
        for lab in ls:
            clusters_per_label[lab] += 1
    sizes = Counter(cluster_of_sha[s] for s in by_sha)
    near_clusters = [
        {"cluster": c, "n_distinct": sizes[c], "labels": sorted(cluster_labels[c]), "files": cluster_files[c][:20]}
        for c, n in sizes.most_common()
        if n > 1
    ]
    fields = {
        "largest_cluster": max(sizes.values()),
        "near_duplicate_clusters": near_clusters,
        "n_clusters": len(set(cluster_of_sha.values())),
        "cross_label_conflicts": conflicts,
    }
    return fields, clusters_per_label


def _source_rows(
    source_keys: list[str],
    source_name: dict[str, str],
    by_sha: dict[str, list[int]],
    fps: dict[str, ImageFingerprint],
    distinct_label: dict[str, str],
    labels: list[str],
) -> list[dict[str, Any]]:
    """Per acquisition source: distinct images and files, per-label counts, median fan geometry."""
    sources = []
    for key in source_keys:
        members = [s for s in by_sha if fps[s].source_key == key]
        geo = np.array([fps[s].fan_bbox for s in members], dtype=float)
        per_label = Counter(distinct_label[s] for s in members)
        sources.append(
            {
                "source": source_name[key],
                "fingerprint": key,
                "n_distinct": len(members),
                "n_files": sum(len(by_sha[s]) for s in members),
                "distinct_per_label": {lab: per_label.get(lab, 0) for lab in labels},
                "fan_bbox_median": [int(x) for x in np.median(geo, axis=0)],
                "fan_area_fraction_median": round(float(np.median([fps[s].fan_area_fraction for s in members])), 3),
                "fan_top_width_fraction_median": round(
                    float(np.median([fps[s].fan_top_width_fraction for s in members])), 3
                ),
                "background_level_median": float(np.median([fps[s].background_level for s in members])),
                "overlay_text_fraction_median": round(
                    float(np.median([fps[s].overlay_text_fraction for s in members])), 5
                ),
            }
        )
    return sources


def _verdict(n_files: int, n_distinct: int, n_clusters: int, v: float, warn: bool) -> str:
    """One sentence: files, distinct images, clusters, the source/label association, the advice."""
    return (
        f"{n_files} files hold {n_distinct} distinct images in {n_clusters} near-duplicate clusters "
        f"({n_files / max(1, n_clusters):.1f} files per cluster); "
        + (
            f"WARNING: label is predictable from the acquisition source (Cramér's V = {v:.2f}); "
            if warn
            else f"source/label association is weak (Cramér's V = {v:.2f}); "
        )
        + "split by cluster (liverfib split), never per file."
    )


def audit_folder(
    root: str | Path,
    *,
    labels_csv: str | Path | None = None,
    grouping: GroupingRule | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """List a labelled folder (see :func:`liverfib.io.list_labelled`) and audit it."""
    return audit_items(list_labelled(root, labels_csv), grouping=grouping, progress=progress)
