"""Class-activation maps of a staging model with pytorch-grad-cam.

The maps are computed on the network input ``(3, S, S)`` and mapped back onto the original image
``(H, W)`` (undoing the fan crop when the model was trained with one), so overlays, statistics and
pseudo-masks live in the coordinates of the file the user gave.

Target layers: the staging network pools features from several encoder stages *and* the last
conv layer, so by default the CAM is taken over all of them (pytorch-grad-cam averages the
per-layer maps); ``layers="final"`` uses the last conv block only (the textbook Grad-CAM).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liverfib.errors import ConfigError, unknown_choice

__all__ = ["CAM_METHODS", "CamResult", "compute_cams", "cam_statistics", "target_layers"]

#: method name -> pytorch_grad_cam class name
CAM_METHODS: dict[str, str] = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "scorecam": "ScoreCAM",
    "eigencam": "EigenCAM",
    "layercam": "LayerCAM",
}
LAYER_CHOICES = ("all", "final")


@dataclass(frozen=True)
class CamResult:
    """One image's CAM: ``heatmap`` (H, W) in [0, 1] at the input's size, ``input_heatmap`` (S, S)."""

    heatmap: np.ndarray
    input_heatmap: np.ndarray
    target: str
    probability: float
    probabilities: dict[str, float] = field(default_factory=dict)


def target_layers(net: Any, layers: str = "all") -> list[Any]:
    """Modules whose activations the CAM uses (see module docstring)."""
    if layers not in LAYER_CHOICES:
        raise unknown_choice("CAM layers", layers, LAYER_CHOICES)
    enc = net.encoder
    final = getattr(enc, "bn2", None) or getattr(enc, "conv_head", None)
    if final is None:
        raise ConfigError(f"no final conv layer found in backbone {type(enc).__name__}")
    if layers == "final" or not getattr(net, "feature_stages", ()):
        return [final]
    mods = dict(enc.named_modules())
    stage_mods = [mods[enc.feature_info[i]["module"]] for i in net.feature_stages]
    return [*stage_mods, final]


def _cam_class(method: str) -> Any:
    import pytorch_grad_cam

    if method not in CAM_METHODS:
        raise unknown_choice("CAM method", method, CAM_METHODS)
    return getattr(pytorch_grad_cam, CAM_METHODS[method])


def _to_original(cam: np.ndarray, array: np.ndarray, preprocess_cfg: Any) -> np.ndarray:
    """Map an input-space map ``(S, S)`` back to the original ``(H, W)`` (inverse crop + resize)."""
    import cv2

    h, w = array.shape
    if not getattr(preprocess_cfg, "fan_crop", False):
        return cv2.resize(cam, (w, h), interpolation=cv2.INTER_LINEAR)
    from liverfib.preprocess.fan import detect_fan, to_uint8

    r0, c0, r1, c1 = detect_fan(to_uint8(array)).bbox
    out = np.zeros((h, w), np.float32)
    out[r0:r1, c0:c1] = cv2.resize(cam, (c1 - c0, r1 - r0), interpolation=cv2.INTER_LINEAR)
    return out


def compute_cams(
    predictor: Any,
    arrays: Sequence[np.ndarray],
    *,
    method: str = "gradcam",
    target: str = "predicted",
    layers: str = "all",
    batch_size: int = 8,
) -> list[CamResult]:
    """CAMs for gray ``(H, W)`` arrays with a loaded :class:`~liverfib.inference.predictor.Predictor`.

    ``target`` is ``"predicted"`` (each image's most probable stage) or a class name (``F0``..``F4``).
    """
    import torch
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    classes = list(predictor.classes)
    if target != "predicted" and target not in classes:
        raise unknown_choice("CAM target", target, ["predicted", *classes])
    net = predictor.net.to(memory_format=torch.contiguous_format)
    cam_cls = _cam_class(method)
    results: list[CamResult] = []
    with cam_cls(model=net, target_layers=target_layers(net, layers)) as cam:
        for start in range(0, len(arrays), batch_size):
            chunk = list(arrays[start : start + batch_size])
            x = torch.from_numpy(np.stack([predictor.preprocess(a) for a in chunk]))
            with torch.no_grad():
                probs = torch.softmax(net(x), dim=1).numpy()
            idx = [int(np.argmax(p)) if target == "predicted" else classes.index(target) for p in probs]
            maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(i) for i in idx])
            for a, m, i, p in zip(chunk, maps, idx, probs, strict=True):
                m = np.nan_to_num(m.astype(np.float32), nan=0.0)
                results.append(
                    CamResult(
                        heatmap=np.clip(_to_original(m, a, predictor.preprocess.config), 0, 1),
                        input_heatmap=m,
                        target=classes[i],
                        probability=float(p[i]),
                        probabilities={c: float(v) for c, v in zip(classes, p, strict=True)},
                    )
                )
    predictor.net.to(memory_format=torch.channels_last)
    return results


def _mass_share(heatmap: np.ndarray, region: np.ndarray | None) -> float | None:
    if region is None:
        return None
    total = float(heatmap.sum())
    return round(float(heatmap[region].sum()) / total, 4) if total > 0 else None


def cam_statistics(
    heatmap: np.ndarray,
    *,
    fan_mask: np.ndarray | None = None,
    liver_mask: np.ndarray | None = None,
    text_mask: np.ndarray | None = None,
) -> dict[str, Any]:
    """Share of CAM mass inside the fan / liver / burned-in-text regions, peak position, hot area.

    A large share outside the fan or on text is a shortcut alarm: the model looks at the frame.
    """
    peak = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return {
        "mass_in_fan": _mass_share(heatmap, fan_mask),
        "mass_in_liver": _mass_share(heatmap, liver_mask),
        "mass_on_text": _mass_share(heatmap, text_mask),
        "peak_row_col": [int(peak[0]), int(peak[1])],
        "area_above_0_5": round(float((heatmap >= 0.5).mean()), 4),
        "mean": round(float(heatmap.mean()), 4),
    }
