"""``device=`` of the commands that run a model: checked before any model loads."""

from __future__ import annotations

from liverfib.errors import ConfigError, unknown_choice

#: What ``--device`` accepts; ``auto`` is cuda when a CUDA device is available, else cpu.
DEVICES = ("cpu", "cuda", "auto")


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _resolve_device(device: str, command: str, *, gpu: bool = False) -> str:
    """``cpu`` | ``cuda`` | ``auto`` -> the device ``command`` runs on (``cpu`` or ``cuda``).

    ``gpu``: whether the command can run on a GPU; one that cannot refuses ``cuda`` rather than
    ignoring it. Raises :class:`ConfigError` (one line at the CLI) for an unknown name or when
    ``cuda`` is asked for and no CUDA device is available."""
    if device not in DEVICES:
        raise unknown_choice("--device", str(device), DEVICES)
    if device == "cpu":
        return "cpu"
    available = _cuda_available()
    if device == "cuda" and not available:
        raise ConfigError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False); "
                          "use --device cpu or --device auto")
    if not gpu:
        if device == "cuda":
            raise ConfigError(f"--device cuda: '{command}' runs on the CPU only in this version; "
                              "use --device cpu or --device auto")
        return "cpu"
    return "cuda" if available else "cpu"
