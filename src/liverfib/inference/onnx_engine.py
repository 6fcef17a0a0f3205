"""ONNX Runtime execution of a torch network (faster CPU inference, same weights).

On this project's 2-core CPU, ONNX Runtime runs the EfficientNet-Lite staging network about 2-3x
faster than PyTorch eager mode (BENCHMARKS.md §5): its graph optimiser fuses the depthwise
convolutions, batch norms and activations that dominate the network. The network is exported once
per distinct set of weights (legacy TorchScript exporter, opset 17, dynamic batch) into a cache
folder and reused; when the cache cannot be written the export stays in memory. Outputs match the
torch network to float precision (checked on export, see :func:`build_session`).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.errors import ModelError
from liverfib.io.atomic import atomic_write

__all__ = ["ENGINES", "OnnxNet", "cache_dir", "onnxruntime_available", "resolve_engine", "weights_key"]

#: ``auto`` = ONNX Runtime when it is installed, else torch.
ENGINES = ("auto", "torch", "onnx")
_OPSET = 17
#: Largest accepted difference between torch and ONNX Runtime logits on the export check.
_TOLERANCE = 1e-3


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_engine(engine: str) -> str:
    """``auto|torch|onnx`` -> ``torch`` or ``onnx`` (``onnx`` must be importable)."""
    if engine not in ENGINES:
        from liverfib.errors import unknown_choice

        raise unknown_choice("engine", engine, ENGINES)
    if engine == "auto":
        return "onnx" if onnxruntime_available() else "torch"
    if engine == "onnx" and not onnxruntime_available():
        raise ModelError("--engine onnx needs the onnxruntime package (pip install onnxruntime)")
    return engine


def cache_dir() -> Path:
    """``$LIVERFIB_CACHE`` or ``$XDG_CACHE_HOME/liverfib`` or ``~/.cache/liverfib``."""
    root = os.environ.get("LIVERFIB_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "liverfib"


def weights_key(net: Any, img_size: int) -> str:
    """Content hash of a network's state (weights and buffers), input size and library versions."""
    import onnxruntime
    import torch

    h = hashlib.sha256(f"{torch.__version__}|{onnxruntime.__version__}|{_OPSET}|{img_size}".encode())
    for name, tensor in net.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


def _export(net: Any, img_size: int) -> bytes:
    import copy
    import warnings

    import torch

    net = copy.deepcopy(net).to(memory_format=torch.contiguous_format).eval()
    buf = io.BytesIO()
    x = torch.zeros(1, 3, img_size, img_size)
    with warnings.catch_warnings():  # the TorchScript exporter warns that dynamo is the future one
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (x,), buf, input_names=["x"], output_names=["logits"],
            dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=_OPSET, dynamo=False,
        )
    return buf.getvalue()


class OnnxNet:
    """Callable ``(B, 3, S, S)`` float32 array -> ``(B, K)`` logits through ONNX Runtime."""

    def __init__(self, model_bytes_or_path: bytes | str, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model_bytes_or_path, opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]


def build_session(net: Any, img_size: int, threads: int) -> OnnxNet:
    """Export ``net`` (cached by :func:`weights_key`), open it, and check it against torch."""
    import torch

    key = weights_key(net, img_size)
    path = cache_dir() / "onnx" / f"{key}.onnx"
    data: bytes | None = None
    if not path.is_file():
        data = _export(net, img_size)
        try:  # atomic: a crash never leaves a half-written model in the cache
            atomic_write(path, data=data)
        except OSError:
            pass  # read-only home: keep the export in memory
    try:
        onnx_net = OnnxNet(str(path) if path.is_file() else data, threads)  # type: ignore[arg-type]
    except Exception as exc:  # a corrupt cache entry: re-export in memory
        path.unlink(missing_ok=True)
        try:
            onnx_net = OnnxNet(_export(net, img_size), threads)
        except Exception as exc2:
            raise ModelError(f"ONNX Runtime cannot run this model ({exc2}); use --engine torch") from exc
    x = torch.linspace(-2, 2, 2 * 3 * img_size * img_size).reshape(2, 3, img_size, img_size)
    with torch.inference_mode():
        ref = net(x.contiguous(memory_format=torch.channels_last)).numpy()
    diff = float(np.abs(onnx_net(x.numpy()) - ref).max())
    if not diff <= _TOLERANCE:
        path.unlink(missing_ok=True)
        raise ModelError(f"ONNX export differs from the torch model (max |logit diff| {diff:.2g}); use --engine torch")
    return onnx_net
