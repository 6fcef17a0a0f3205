"""What the image functions accept (a path, a list of paths, an array, an :class:`Image`) -> paths or images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from liverfib.errors import InputError
from liverfib.image import Image

if TYPE_CHECKING:
    import numpy as np

PathLike = Union[str, "os.PathLike[str]"]
#: What the image commands accept: a path, a list of paths, an array or an :class:`Image`.
Inputs = Union[PathLike, Sequence[PathLike], "np.ndarray", Image, Sequence[Image]]


def _is_array(x: Any) -> bool:
    return hasattr(x, "__array__") and hasattr(x, "shape") and not isinstance(x, (str, bytes))


def _as_paths(inputs: Any) -> list[Path]:
    """A path or a list of paths -> ``list[Path]`` (a string is one path, never its characters)."""
    if isinstance(inputs, (str, os.PathLike)):
        return [Path(inputs)]
    if isinstance(inputs, Sequence):
        if not inputs:
            raise InputError("no input given: pass a path, a list of paths or an image array")
        if all(isinstance(p, (str, os.PathLike)) for p in inputs):
            return [Path(p) for p in inputs]
    raise InputError(f"expected a path or a list of paths, got {type(inputs).__name__}")


def _as_images(inputs: Any) -> list[Image] | None:
    """In-memory inputs -> :class:`Image` list; ``None`` when ``inputs`` are paths."""
    import numpy as np

    if isinstance(inputs, Image):
        return [inputs]
    if _is_array(inputs):
        return [Image(np.asarray(inputs))]
    if isinstance(inputs, Sequence) and inputs and not isinstance(inputs, str):
        if all(isinstance(x, Image) for x in inputs):
            return list(inputs)
        if all(_is_array(x) for x in inputs):
            return [Image(np.asarray(x)) for x in inputs]
    return None



def _write_temp(images: list[Image], folder: Path) -> list[Path]:
    import numpy as np

    from liverfib.io.nifti import write_nifti

    paths = []
    for i, im in enumerate(images):
        if im.ndim == 2:
            from PIL import Image as PILImage

            p = folder / f"array_{i}.png"
            PILImage.fromarray(np.clip(im.array, 0, 255).astype(np.uint8)).save(p)
        else:
            p = write_nifti(im, folder / f"array_{i}.nii.gz")
        paths.append(p)
    return paths



def _opt(p: PathLike | None) -> Path | None:
    return Path(p) if p is not None else None
