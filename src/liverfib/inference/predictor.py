"""Staging inference: load a model bundle (or the shipped default) and stage images.

Every image goes through exactly the preprocessing saved in the bundle. Images that are not
gray B-mode ultrasound get a warning (colour content, e.g. Doppler) or an error (blank image,
non-ultrasound DICOM) instead of a confident stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liverfib.errors import InputError, LiverfibError, ModelError
from liverfib.image import Image
from liverfib.models.assets import default_bundle_path

if TYPE_CHECKING:
    from liverfib.models.bundle import Bundle

__all__ = ["DEFAULT_MODEL_PATH", "PredictOutput", "Predictor", "check_bmode", "load_predictor", "stage_files"]

DEFAULT_MODEL_PATH = default_bundle_path("us-staging")

#: Fraction of clearly coloured pixels above which an image is flagged as colour (Doppler/overlay).
COLOUR_WARN_FRACTION = 0.01


def check_bmode(image: Image) -> str | None:
    """Raise for images that cannot be B-mode ultrasound; return a warning string for doubtful ones."""
    if image.modality not in ("US", "OT"):
        raise InputError(
            f"{image.path}: modality {image.modality} is not ultrasound; this command needs B-mode US"
        )
    if image.ndim != 2:
        raise InputError(f"{image.path}: expected one 2D frame, got shape {image.shape} (pick a frame)")
    arr = image.array
    if float(np.std(arr)) < 2.0 * (1.0 if arr.dtype == np.uint8 else float(np.ptp(arr)) / 255.0 + 1e-9):
        raise InputError(f"{image.path}: image is blank (almost constant); nothing to analyse")
    if image.meta.get("colour") and image.meta.get("colour_fraction", 1.0) > COLOUR_WARN_FRACTION:
        return f"colour content ({image.meta.get('colour_fraction', 0):.0%} of pixels): Doppler or overlay?"
    return None


@dataclass
class PredictOutput:
    """Predictions of a batch of files: ``probs`` is ``(N, K)`` for the readable files."""

    paths: list[Path]
    probs: np.ndarray
    classes: list[str]
    warnings: list[str | None]
    errors: list[tuple[Path, str]] = field(default_factory=list)

    def as_records(self) -> list[dict[str, Any]]:
        out = []
        idx = {c: i for i, c in enumerate(self.classes)}
        for path, p, warn in zip(self.paths, self.probs, self.warnings, strict=True):
            rec: dict[str, Any] = {
                "path": str(path),
                "stage": self.classes[int(np.argmax(p))],
                "probabilities": {c: round(float(p[i]), 4) for c, i in idx.items()},
                "p_ge_f2": round(float(p[idx["F2"] :].sum()), 4) if "F2" in idx else None,
                "p_ge_f3": round(float(p[idx["F3"] :].sum()), 4) if "F3" in idx else None,
                "p_f4": round(float(p[idx["F4"]]), 4) if "F4" in idx else None,
            }
            if warn:
                rec["warning"] = warn
            out.append(rec)
        return out


class Predictor:
    """A loaded staging model with its preprocessing."""

    def __init__(self, bundle: Bundle, source: str, engine: str = "torch") -> None:
        import torch

        from liverfib.models.staging import StagingNet
        from liverfib.preprocess.transforms import PreprocessConfig, UltrasoundPreprocess

        missing = [k for k in ("classes", "preprocessing") if not bundle.meta.get(k)]
        if missing:
            raise ModelError(f"{source}: not a staging model (its bundle lacks {', '.join(missing)})")
        self.bundle = bundle
        self.source = source
        # channels_last: ~2x faster depthwise convolutions on CPU (measured, BENCHMARKS.md)
        self.net = StagingNet.from_bundle(bundle).to(memory_format=torch.channels_last)
        self.classes: list[str] = list(bundle.classes or [])
        self.thresholds: dict[str, float] | None = bundle.extra.get("thresholds")
        self.preprocess = UltrasoundPreprocess(PreprocessConfig(**bundle.preprocessing))
        self._torch = torch
        #: ONNX Runtime session for the forward pass (``engine="onnx"``); ``self.net`` stays the torch
        #: network for gradients (CAMs) and as the reference.
        self.onnx = None
        if engine == "onnx":
            from liverfib.inference.onnx_engine import build_session

            self.onnx = build_session(self.net, self.preprocess.config.img_size, torch.get_num_threads())
        self.engine = engine

    def _logits(self, x: Any) -> Any:
        if self.onnx is not None:
            return self._torch.from_numpy(self.onnx(x.numpy()))
        return self.net(x.contiguous(memory_format=self._torch.channels_last))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.source,
            **self.bundle.network["args"],
            "preprocess": self.bundle.preprocessing,
            "weights_origin": self.bundle.extra.get("weights_origin"),
            "synthetic": self.bundle.synthetic,
            "engine": self.engine,
        }

    def predict_arrays(
        self, arrays: Sequence[np.ndarray], *, tta: bool = False, batch_size: int = 16
    ) -> np.ndarray:
        """Gray ``(H, W)`` arrays -> ``(N, K)`` probabilities."""
        torch = self._torch
        out = []
        for start in range(0, len(arrays), batch_size):
            x = torch.from_numpy(np.stack([self.preprocess(a) for a in arrays[start : start + batch_size]]))
            with torch.inference_mode():
                p = torch.softmax(self._logits(x), dim=1)
                if tta:
                    p = 0.5 * (p + torch.softmax(self._logits(x.flip(-1).contiguous()), dim=1))
            out.append(p.numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def predict_paths(
        self, paths: Sequence[Path], *, tta: bool = False, batch_size: int = 16, progress: bool = False
    ) -> PredictOutput:
        """Read, check and stage files; unreadable/unsuitable files are listed in ``errors``."""
        out = stage_files(paths, lambda: self, tta=tta, batch_size=batch_size, progress=progress)
        if not out.classes:  # nothing readable: still this model's (0, K) shape
            out = PredictOutput([], np.zeros((0, len(self.classes)), np.float32), self.classes, [], out.errors)
        return out


def stage_files(
    paths: Sequence[Path],
    load_model: Callable[[], Predictor],
    *,
    tta: bool = False,
    batch_size: int = 16,
    progress: bool = False,
) -> PredictOutput:
    """Read, check and stage files; unreadable/unsuitable files are listed in ``errors``.

    ``load_model()`` is called once, when the first readable image is found: a run whose inputs are
    all unreadable fails in well under a second instead of after the model has loaded. With no
    readable image the output has no rows and ``classes == []``.
    """
    from liverfib.io import read_image

    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    model: Predictor | None = None
    good: list[Path] = []
    probs: list[np.ndarray] = []
    warnings: list[str | None] = []
    errors: list[tuple[Path, str]] = []
    bar = None
    if progress:
        from liverfib.progress import progress_bar

        bar = progress_bar(total=len(paths), desc="predict", unit="img")
    for start in range(0, len(paths), batch_size):
        arrays = []
        for path in paths[start : start + batch_size]:
            try:
                image = read_image(path)
                warn = check_bmode(image)
            except LiverfibError as exc:
                errors.append((Path(path), str(exc)))
                continue
            arrays.append(image.array)
            good.append(Path(path))
            warnings.append(warn)
        if arrays:
            model = model or load_model()
            probs.append(model.predict_arrays(arrays, tta=tta, batch_size=batch_size))
        if bar is not None:
            bar.update(min(batch_size, len(paths) - start))
    if bar is not None:
        bar.close()
    classes = model.classes if model is not None else []
    p = np.concatenate(probs) if probs else np.zeros((0, len(classes)), np.float32)
    return PredictOutput(good, p, classes, warnings, errors)


def load_predictor(model: str | Path = "default", engine: str = "torch") -> Predictor:
    """``"default"`` loads the shipped model; anything else is a model bundle (folder or .zip).

    ``engine``: ``torch``, ``onnx`` (ONNX Runtime, ~2-3x faster on CPU) or ``auto`` (onnx when
    onnxruntime is installed). The CLI's ``predict`` uses ``auto``; library callers get torch unless
    they ask, since CAMs and fine-tuning need the torch network anyway.
    """
    import torch

    from liverfib.inference.onnx_engine import resolve_engine
    from liverfib.models.bundle import load_bundle

    engine = resolve_engine(engine)

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 8)))
    if str(model) == "default":
        if not DEFAULT_MODEL_PATH.exists():
            raise LiverfibError(
                f"the shipped default model is missing ({DEFAULT_MODEL_PATH}); reinstall liverfib"
            )
        return Predictor(load_bundle(DEFAULT_MODEL_PATH, task="us-staging"), "default", engine)
    return Predictor(load_bundle(model, task="us-staging"), str(model), engine)
