"""Read many files at once, keeping a readable record of every file that failed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from liverfib.errors import LiverfibError
from liverfib.image import Image

__all__ = ["read_many"]


def read_many(
    paths: Iterable[str | Path],
    *,
    reader: Callable[..., Image] | None = None,
    **kw: Any,
) -> tuple[list[Image], list[tuple[Path, str]]]:
    """Read each path with ``reader`` and sort the results into good images and failures.

    Args:
        paths: files (or DICOM series folders) to read, in the order wanted.
        reader: the function to call as ``reader(path, **kw)``; :func:`liverfib.io.read_image`
            when ``None``.
        **kw: passed on to ``reader`` (e.g. ``max_pixels=``, ``frame=``).

    Returns:
        ``(images, failures)``: the images read, in input order, and one ``(path, message)`` per
        file that raised a :class:`~liverfib.errors.LiverfibError` (message on one line). No file is
        dropped silently; errors that are not user-input errors (bugs) propagate.
    """
    if reader is None:
        from liverfib.io.reader import read_image

        reader = read_image
    images: list[Image] = []
    failures: list[tuple[Path, str]] = []
    for p in paths:
        path = Path(p)
        try:
            images.append(reader(path, **kw))
        except LiverfibError as exc:
            failures.append((path, " ".join(str(exc).split()) or type(exc).__name__))
    return images, failures
