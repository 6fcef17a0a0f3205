"""What a labelled collection holds: byte hashes (links followed), decoded fingerprints, CNN
embeddings, and the byte- and pixel-identical copies among its files."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liverfib.dataset.fingerprint import ImageFingerprint, file_sha256, fingerprint_image
from liverfib.errors import InputError, LiverfibError
from liverfib.io import LabelledItem, read_image, resolve_file

__all__ = ["Duplicates", "Inventory", "find_duplicates", "take_inventory"]

#: Images embedded per CNN batch.
_EMBED_BATCH = 32


@dataclass
class Inventory:
    """Per item its SHA-256 (``None`` if unreadable); per readable distinct content its fingerprint
    and raw CNN embedding ``(EMBEDDING_DIM,)`` (when embedding); the unreadable files and errors."""

    sha_of: list[str | None]
    unreadable: list[dict[str, str]]
    n_links: int
    fingerprints: dict[str, ImageFingerprint]
    raw_embeddings: dict[str, np.ndarray]


@dataclass
class Duplicates:
    """Readable files grouped by content: ``by_sha`` sha256 -> item indices, ``by_pixel`` decoded-pixel
    sha1 -> sha256s, and the groups (relative paths) of byte- and pixel-identical copies."""

    by_sha: dict[str, list[int]]
    by_pixel: dict[str, list[str]]
    exact_groups: list[list[str]]
    pixel_groups: list[list[str]]


def take_inventory(
    items: list[LabelledItem], *, embed: bool, progress: Callable[[int, int], None] | None = None
) -> Inventory:
    """Hash every file (following links), then decode and fingerprint each distinct content once.

    Unreadable files are listed in item order: first those that cannot be hashed, then those whose
    content cannot be decoded as a 2D image. ``progress(k, n)`` is called per distinct content.
    """
    sha_of, unreadable, real_of_sha, n_links = _hash_files(items)
    fps, bad_sha, raw = _decode_contents(real_of_sha, embed=embed, progress=progress)
    for item, sha in zip(items, sha_of, strict=True):
        if sha is not None and sha in bad_sha:
            unreadable.append({"path": item.rel, "error": bad_sha[sha]})
    return Inventory(sha_of, unreadable, n_links, fps, raw)


def _hash_files(items: list[LabelledItem]) -> tuple[list[str | None], list[dict[str, str]], dict[str, Path], int]:
    """SHA-256 per item (``None`` if unreadable), the unreadable ones, one real path per hash, links."""
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
    return sha_of, unreadable, real_of_sha, n_links


def _decode_contents(
    real_of_sha: dict[str, Path], *, embed: bool, progress: Callable[[int, int], None] | None
) -> tuple[dict[str, ImageFingerprint], dict[str, str], dict[str, np.ndarray]]:
    """Fingerprints, decode errors and raw embeddings (cached or computed in batches) per hash."""
    embedder = None
    if embed:
        from liverfib.dataset.embedding import EmbeddingModel, load_cached_embedding, store_cached_embedding

        embedder = EmbeddingModel()
    fps: dict[str, ImageFingerprint] = {}
    bad_sha: dict[str, str] = {}
    raw: dict[str, np.ndarray] = {}
    pending: list[tuple[str, np.ndarray]] = []

    def embed_pending() -> None:
        if embedder is not None and pending:
            for (sha, _), vec in zip(pending, embedder.raw([a for _, a in pending]), strict=True):
                raw[sha] = vec
                store_cached_embedding(fps[sha].pixel_sha1, vec)
        pending.clear()

    shas = list(real_of_sha)
    for k, sha in enumerate(shas):
        try:
            image = read_image(real_of_sha[sha])
            if image.ndim != 2:
                raise InputError(f"{real_of_sha[sha]}: expected a 2D image, got shape {image.shape}")
            fps[sha] = fingerprint_image(image)
            cached = load_cached_embedding(fps[sha].pixel_sha1) if embedder is not None else None
            if cached is not None:
                raw[sha] = cached
            elif embedder is not None:
                pending.append((sha, image.array))
                if len(pending) == _EMBED_BATCH:
                    embed_pending()
        except LiverfibError as exc:
            bad_sha[sha] = str(exc)
        if progress is not None:
            progress(k + 1, len(shas))
    embed_pending()
    return fps, bad_sha, raw


def find_duplicates(
    items: list[LabelledItem], good: list[tuple[int, str]], fps: dict[str, ImageFingerprint]
) -> Duplicates:
    """Group the readable items ``good`` (``(index, sha256)``) by bytes and by decoded pixels."""
    by_sha: dict[str, list[int]] = defaultdict(list)
    for i, s in good:
        by_sha[s].append(i)
    exact_groups = [[items[i].rel for i in idx] for idx in by_sha.values() if len(idx) > 1]
    exact_groups.sort(key=len, reverse=True)
    by_pixel: dict[str, list[str]] = defaultdict(list)
    for s in by_sha:
        by_pixel[fps[s].pixel_sha1].append(s)
    pixel_groups = [[items[by_sha[s][0]].rel for s in ss] for ss in by_pixel.values() if len(ss) > 1]
    return Duplicates(by_sha, by_pixel, exact_groups, pixel_groups)
