"""Staging checkpoints: weights + model config + preprocessing + classes + thresholds + metrics.

One ``.pt`` file (torch.save of a plain dict, loaded with ``weights_only=True``). Float weights are
stored as float16 to keep the shipped model small; they are restored to float32 on load.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from liverfib.errors import ModelError

__all__ = ["CHECKPOINT_FORMAT", "SEG_CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint", "load_state", "build_model"]

CHECKPOINT_FORMAT = "liverfib-staging/1"
SEG_CHECKPOINT_FORMAT = "liverfib-segmentation/1"


def save_checkpoint(
    path: Path,
    net: Any,
    *,
    fmt: str = CHECKPOINT_FORMAT,
    model_config: dict[str, Any] | None = None,
    **fields: Any,
) -> Path:
    """Save ``net`` with metadata ``fields`` atomically (``model_config`` defaults to ``net.config()``)."""
    import torch

    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    config = net.config() if model_config is None else model_config
    payload = {"format": fmt, "model": config, "state_dict": state, **fields}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, *, fmt: str = CHECKPOINT_FORMAT) -> dict[str, Any]:
    """Read a checkpoint dict; clear errors for missing, corrupt or foreign files."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found (use --model default or a .pt from 'liverfib train')")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # garbage bytes make torch's unpickler raise almost any error type
        raise ModelError(f"{path}: not a readable liverfib checkpoint ({_load_error_reason(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ModelError(f"{path}: expected a {fmt} checkpoint, found {found!r}")
    missing = [k for k in ("model", "state_dict") if k not in payload]
    if missing:
        raise ModelError(f"{path}: checkpoint lacks {', '.join(missing)}; re-create it with 'liverfib train'")
    return payload


def _load_error_reason(exc: BaseException) -> str:
    """One short line from torch.load's error (its messages can be empty or span paragraphs)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:  # skip torch's generic weights_only preamble
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(exc, EOFError):
        return "file ends early"
    if not isinstance(exc, (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile)) or not lines:
        return f"unexpected content, {type(exc).__name__}"
    return lines[0].split(". ")[0][:120]


def load_state(net: Any, payload: dict[str, Any], what: str) -> Any:
    """Load a checkpoint's (float16-stored) ``state_dict`` into ``net`` strictly; eval mode.

    ``what`` names the network in the error when the weights do not fit it.
    """
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in payload["state_dict"].items()}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"checkpoint weights do not fit {what}: {str(exc).splitlines()[0]}") from None
    return net.eval()


def build_model(payload: dict[str, Any]) -> Any:
    """Instantiate the StagingNet described by a checkpoint and load its weights (eval mode)."""
    from liverfib.models.staging import StagingNet

    cfg = payload["model"]
    net = StagingNet(
        cfg["backbone"],
        n_classes=cfg["n_classes"],
        head=cfg["head"],
        feature_stages=cfg["feature_stages"],
        pooling=cfg.get("pooling", "mean"),
        pretrained=False,
    )
    return load_state(net, payload, cfg["backbone"])
