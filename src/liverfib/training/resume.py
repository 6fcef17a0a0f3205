"""Resumable training state in one safetensors file (no pickle): tensors + a JSON skeleton.

A training state is a tree of dicts/lists holding tensors and plain values (network, optimizer and
scheduler ``state_dict()``, RNG state, counters). Tensors go into the safetensors body under their
tree path; everything else goes into the header's metadata as JSON, with ``{"__tensor__": key}``
where a tensor was. Written atomically (``liverfib.io.atomic``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from liverfib.errors import ModelError

__all__ = ["write_resume_state", "read_resume_state"]

_TAG = "__tensor__"


def write_resume_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (dicts, lists, tensors, JSON values) to ``path`` atomically."""
    from safetensors.torch import save

    from liverfib.io.atomic import atomic_write

    tensors: dict[str, Any] = {}
    skeleton = _flatten(state, "", tensors)
    blob = save(tensors, metadata={"liverfib": "resume-state/1", "tree": json.dumps(skeleton)})
    return atomic_write(path, data=blob)


def read_resume_state(path: str | Path, device: Any = "cpu") -> dict[str, Any]:
    """Read a state written by :func:`write_resume_state` (tensors on ``device``)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device=str(device)) as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no items()
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelError(f"{path}: not a readable resume state ({exc}); delete it to start afresh") from None
    if meta.get("liverfib") != "resume-state/1":
        raise ModelError(f"{path}: not a liverfib resume state; delete it to start afresh")
    return _unflatten(json.loads(meta["tree"]), tensors)


def _flatten(value: Any, key: str, tensors: dict[str, Any]) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        tensors[key] = value.detach().cpu().contiguous()
        return {_TAG: key}
    if isinstance(value, dict):
        # JSON keys are strings: remember int keys (optimizer state is keyed by parameter index)
        return {"__dict__": [[k, _flatten(v, f"{key}.{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_flatten(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]
    return value


def _unflatten(value: Any, tensors: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if _TAG in value:
            return tensors[value[_TAG]]
        return {k: _unflatten(v, tensors) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [_unflatten(v, tensors) for v in value]
    return value
