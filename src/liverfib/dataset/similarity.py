"""Same-scan similarity of distinct images: the grouping rule, linked pairs and similarity bands.

Three measures between two images: Pearson correlation of the fan-crop descriptor (``pixel``),
cosine of CNN embeddings (``cnn``) and 64-bit perceptual-hash agreement (``phash``, reported only).
Linked images are grouped into clusters (connected components); see :class:`GroupingRule`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from liverfib.errors import InputError

__all__ = ["DEFAULT_NEAR_THRESHOLD", "SIMILARITY_BANDS", "GroupingRule", "link_components", "near_pairs"]

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


def link_components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component index of each of ``n`` items linked by index ``pairs`` ``(M, 2)``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(pairs) == 0:
        return np.arange(n)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def near_pairs(
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
