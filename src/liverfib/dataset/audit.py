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

from liverfib.dataset.fingerprint import ImageFingerprint, file_sha256, fingerprint_image
from liverfib.errors import InputError, LiverfibError
from liverfib.io import LabelledItem, list_labelled, read_image, resolve_file

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

#: Descriptor (fan-crop pixel) correlation that alone links two images as frames of one scan.
DEFAULT_NEAR_THRESHOLD = 0.85


@dataclass(frozen=True)
class GroupingRule:
    """When two distinct images are linked (frames of one scan); clusters = connected components.

    Linked when ``pixel >= pixel`` or (``cnn >= cnn`` and ``pixel >= cnn_min_pixel``) or
    (``pixel >= joint_pixel`` and ``cnn >= joint_cnn``). The small pixel support on the CNN link keeps
    a set of look-alike images (one device, phantoms) from collapsing into one cluster on CNN cosine
    alone. ``use_cnn=False`` keeps only the pixel link (no torch; for quick checks).
    """

    pixel: float = DEFAULT_NEAR_THRESHOLD
    cnn: float = 0.82
    cnn_min_pixel: float = 0.50
    joint_pixel: float = 0.80
    joint_cnn: float = 0.78
    use_cnn: bool = True

    def __post_init__(self) -> None:
        for name in ("pixel", "cnn", "cnn_min_pixel", "joint_pixel", "joint_cnn"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise InputError(f"grouping threshold {name} must be in (0, 1], got {value}")

    def describe(self) -> str:
        if not self.use_cnn:
            return f"connected components of links: fan-descriptor correlation >= {self.pixel}"
        return (
            f"connected components of links: pixel >= {self.pixel} or (cnn >= {self.cnn} and "
            f"pixel >= {self.cnn_min_pixel}) or (pixel >= {self.joint_pixel} and cnn >= {self.joint_cnn})"
        )


#: Lower band edges reported by the audit for each measure (pairs counted in ``[lo, next)``).
SIMILARITY_BANDS = {
    "pixel": (0.95, 0.90, 0.85, 0.80, 0.75, 0.70),
    "phash": (0.95, 0.90, 0.85, 0.80, 0.75),
    "cnn": (0.95, 0.90, 0.85, 0.80, 0.75, 0.70),
}
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


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(pairs) == 0:
        return np.arange(n)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _near_pairs(
    descriptors: np.ndarray,
    hashes: np.ndarray,
    embeddings: np.ndarray | None,
    rule: GroupingRule,
    block: int = 2048,
) -> tuple[np.ndarray, dict[str, list[dict[str, Any]]]]:
    """Linked index pairs (i < j) and the pair counts per similarity band of each measure.

    ``descriptors`` ``(N, 576)``, ``hashes`` ``(N, 64)`` bool, ``embeddings`` ``(N, D)`` unit rows or None.
    """
    from liverfib.dataset.fingerprint import phash_similarity

    n = len(descriptors)
    out = []
    names = ["pixel", "phash"] + (["cnn"] if embeddings is not None else [])
    counts = {name: np.zeros(len(SIMILARITY_BANDS[name]) + 1, np.int64) for name in names}
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = {"pixel": descriptors[start:stop] @ descriptors.T, "phash": phash_similarity(hashes[start:stop], hashes)}
        link = sims["pixel"] >= rule.pixel
        if embeddings is not None:
            sims["cnn"] = embeddings[start:stop] @ embeddings.T
            link |= ((sims["cnn"] >= rule.cnn) & (sims["pixel"] >= rule.cnn_min_pixel)) | (
                (sims["pixel"] >= rule.joint_pixel) & (sims["cnn"] >= rule.joint_cnn)
            )
        ii, jj = np.nonzero(link)
        ii = ii + start
        keep = ii < jj
        out.append(np.stack([ii[keep], jj[keep]], axis=1))
        upper = np.arange(start, stop)[:, None] < np.arange(n)[None, :]
        for name in names:
            edges = np.array(SIMILARITY_BANDS[name])
            band = np.searchsorted(-edges, -sims[name][upper], side="right")  # 0 = top band
            counts[name] += np.bincount(band, minlength=len(edges) + 1)
    bands: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        edges = SIMILARITY_BANDS[name]
        tops = (1.0, *edges)
        bands[name] = [
            {"band": [lo, hi], "pairs": int(c)} for lo, hi, c in zip((*edges, -1.0), tops, counts[name], strict=True)
        ]
    pairs = np.concatenate(out) if out else np.zeros((0, 2), np.int64)
    return pairs, bands


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
    embedder = None
    if rule.use_cnn:
        from liverfib.dataset.embedding import EmbeddingModel, load_cached_embedding, store_cached_embedding

        embedder = EmbeddingModel()
    raw_embedding: dict[str, np.ndarray] = {}
    pending: list[tuple[str, np.ndarray]] = []

    def embed_pending() -> None:
        if embedder is not None and pending:
            for (sha, _), vec in zip(pending, embedder.raw([a for _, a in pending]), strict=True):
                raw_embedding[sha] = vec
                store_cached_embedding(fps[sha].pixel_sha1, vec)
        pending.clear()

    # 1. byte hashes (following links)
    sha_of: list[str | None] = []
    unreadable: list[dict[str, str]] = []
    real_of_sha: dict[str, Path] = {}
    n_links = 0
    for item in items:
        try:
            real = resolve_file(item.path)
            sha = file_sha256(real)
        except LiverfibError as exc:
            unreadable.append({"path": item.rel, "error": str(exc)})
            sha_of.append(None)
            continue
        except OSError as exc:
            unreadable.append({"path": item.rel, "error": f"{item.path}: cannot read ({exc.strerror})"})
            sha_of.append(None)
            continue
        n_links += real != item.path
        sha_of.append(sha)
        real_of_sha.setdefault(sha, real)
    # 2. decode each distinct content once
    fps: dict[str, ImageFingerprint] = {}
    bad_sha: dict[str, str] = {}
    shas = list(real_of_sha)
    for k, sha in enumerate(shas):
        try:
            image = read_image(real_of_sha[sha])
            if image.ndim != 2:
                raise InputError(f"{real_of_sha[sha]}: expected a 2D image, got shape {image.shape}")
            fps[sha] = fingerprint_image(image)
            cached = load_cached_embedding(fps[sha].pixel_sha1) if embedder is not None else None
            if cached is not None:
                raw_embedding[sha] = cached
            elif embedder is not None:
                pending.append((sha, image.array))
                if len(pending) == 32:
                    embed_pending()
        except LiverfibError as exc:
            bad_sha[sha] = str(exc)
        if progress is not None:
            progress(k + 1, len(shas))
    embed_pending()
    for item, sha in zip(items, sha_of, strict=True):
        if sha is not None and sha in bad_sha:
            unreadable.append({"path": item.rel, "error": bad_sha[sha]})
    good = [(i, s) for i, s in enumerate(sha_of) if s is not None and s in fps]
    if not good:
        raise InputError(
            "no readable image in the collection; see the unreadable list: " + unreadable[0]["error"]
        )

    # exact duplicate groups (byte-identical)
    by_sha: dict[str, list[int]] = defaultdict(list)
    for i, s in good:
        by_sha[s].append(i)
    exact_groups = [[items[i].rel for i in idx] for idx in by_sha.values() if len(idx) > 1]
    exact_groups.sort(key=len, reverse=True)
    # pixel-identical groups across different byte contents
    by_pixel: dict[str, list[str]] = defaultdict(list)
    for s in by_sha:
        by_pixel[fps[s].pixel_sha1].append(s)
    pixel_groups = [[items[by_sha[s][0]].rel for s in ss] for ss in by_pixel.values() if len(ss) > 1]

    # 3. near-duplicate clusters over distinct pixel contents
    pixel_keys = list(by_pixel)
    desc = np.stack([fps[by_pixel[p][0]].descriptor for p in pixel_keys])
    hashes = np.stack([fps[by_pixel[p][0]].phash for p in pixel_keys])
    embeddings = None
    if embedder is not None:
        from liverfib.dataset.embedding import normalise_embeddings

        embeddings = normalise_embeddings(np.stack([raw_embedding[by_pixel[p][0]] for p in pixel_keys]))
    links, bands = _near_pairs(desc, hashes, embeddings, rule)
    comp = _components(len(pixel_keys), links)
    cluster_of_pixel = {p: f"c{int(c):05d}" for p, c in zip(pixel_keys, comp, strict=True)}
    cluster_of_sha = {s: cluster_of_pixel[fps[s].pixel_sha1] for s in by_sha}

    # 4. sources
    source_keys = sorted(  # largest first; ties by fingerprint so names do not depend on hash order
        {fps[s].source_key for s in by_sha}, key=lambda k: (-sum(fps[s].source_key == k for s in by_sha), k)
    )
    source_name = {k: f"S{n + 1}" for n, k in enumerate(source_keys)}

    files = []
    for i, s in good:
        fp = fps[s]
        files.append(
            {
                "path": items[i].rel,
                "label": items[i].label,
                "patient": items[i].patient,
                "sha256": s,
                "cluster": cluster_of_sha[s],
                "source": source_name[fp.source_key],
            }
        )
    labels = sorted({it.label for it in items})
    files_per_label = Counter(items[i].label for i, _ in good)
    # cluster -> labels
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
    # distinct images: label of each distinct content (first file's label; conflicts listed above)
    distinct_label = {s: items[idx[0]].label for s, idx in by_sha.items()}
    distinct_source = {s: source_name[fps[s].source_key] for s in by_sha}
    v = cramers_v([distinct_source[s] for s in by_sha], [distinct_label[s] for s in by_sha])
    clusters_per_label = Counter()
    for _c, ls in cluster_labels.items():
        for lab in ls:
            clusters_per_label[lab] += 1
    sizes = Counter(cluster_of_sha[s] for s in by_sha)
    multi = [c for c, n in sizes.most_common() if n > 1]
    near_clusters = [
        {
            "cluster": c,
            "n_distinct": sizes[c],
            "labels": sorted(cluster_labels[c]),
            "files": cluster_files[c][:20],
        }
        for c in multi
    ]
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
                "fan_area_fraction_median": round(
                    float(np.median([fps[s].fan_area_fraction for s in members])), 3
                ),
                "fan_top_width_fraction_median": round(
                    float(np.median([fps[s].fan_top_width_fraction for s in members])), 3
                ),
                "background_level_median": float(np.median([fps[s].background_level for s in members])),
                "overlay_text_fraction_median": round(
                    float(np.median([fps[s].overlay_text_fraction for s in members])), 5
                ),
            }
        )
    n_clusters = len(set(cluster_of_sha.values()))
    n_files = len(items)
    warn = v >= CONFOUNDING_WARN_V
    verdict = (
        f"{n_files} files hold {len(by_sha)} distinct images in {n_clusters} near-duplicate clusters "
        f"({n_files / max(1, n_clusters):.1f} files per cluster); "
        + (
            f"WARNING: label is predictable from the acquisition source (Cramér's V = {v:.2f}); "
            if warn
            else f"source/label association is weak (Cramér's V = {v:.2f}); "
        )
        + "split by cluster (liverfib split), never per file."
    )
    summary: dict[str, Any] = {
        "n_files": n_files,
        "n_unreadable": len(unreadable),
        "unreadable": unreadable,
        "n_link_files": int(n_links),
        "labels": {
            lab: {
                "files": files_per_label.get(lab, 0),
                "unique_clusters": clusters_per_label.get(lab, 0),
                "distinct_images": sum(1 for s in by_sha if distinct_label[s] == lab),
            }
            for lab in labels
        },
        "exact_duplicate_groups": exact_groups,
        "n_exact_duplicate_groups": len(exact_groups),
        "n_unique_exact": len(by_sha),
        "pixel_duplicate_groups": pixel_groups,
        "n_unique_pixels": len(by_pixel),
        "near_duplicate_threshold": rule.pixel,
        "grouping_rule": asdict(rule),
        "grouping": rule.describe(),
        "similarity_bands": bands,
        "largest_cluster": max(sizes.values()),
        "near_duplicate_clusters": near_clusters,
        "n_clusters": n_clusters,
        "cross_label_conflicts": conflicts,
        "sources": sources,
        "source_label_cramers_v": round(v, 4),
        "confounding_warning": warn,
        "verdict": verdict,
    }
    unit = {} if embeddings is None else dict(zip(pixel_keys, embeddings, strict=True))
    return AuditResult(summary=summary, files=files, fingerprints=fps, embeddings=unit)


def audit_folder(
    root: str | Path,
    *,
    labels_csv: str | Path | None = None,
    grouping: GroupingRule | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """List a labelled folder (see :func:`liverfib.io.list_labelled`) and audit it."""
    return audit_items(list_labelled(root, labels_csv), grouping=grouping, progress=progress)
