"""The model bundle: the one format of every shipped or trained liverfib model.

A bundle is a folder (or a ``.zip`` of one; MONAI bundles and nnU-Net model folders are the
models) holding::

    bundle.yaml          what the model is and where it came from (schema below)
    weights.safetensors  the network's tensors (float weights stored as float16 unless full precision
                         was asked for; restored to float32 on load). No pickle is ever loaded.
    card.yaml            optional: the human-written model card, kept verbatim

``bundle.yaml``::

    format: liverfib-bundle/1
    task: us-staging                  # a task of liverfib.models.tasks
    network: {name: StagingNet, args: {...}}   # what the task's network factory is built from
    classes: [F0, F1, F2, F3, F4]     # or null
    preprocessing: {...}              # what inference must do to an input before the network
    input: {size: [224, 224], spacing_mm: null, channels: 3}
    metrics: {split: val, values: {...}}        # the split the figures were measured on
    training_data: {description: ..., fingerprint: ...}
    seed: 0
    code_version: liverfib 0.1.0
    trained_at: 2026-12-02T17:00:00Z  # or null when unknown (converted legacy checkpoints)
    synthetic: false                  # trained only on phantoms / synthetic data
    weights_sha256: ...               # of weights.safetensors: a yaml never pairs with other weights
    extra: {...}                      # anything task-specific (decision thresholds, train config)

Writes are atomic per file (weights first, then the yaml that names their hash), so a reader sees a
complete bundle or an error, never a yaml paired with other weights.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liverfib.errors import ModelError

if TYPE_CHECKING:
    import torch

__all__ = ["BUNDLE_FORMAT", "Bundle", "save_bundle", "load_bundle"]

BUNDLE_FORMAT = "liverfib-bundle/1"
YAML_NAME = "bundle.yaml"
WEIGHTS_NAME = "weights.safetensors"
CARD_NAME = "card.yaml"
_KEYS = ("format", "task", "network", "classes", "preprocessing", "input", "metrics", "training_data", "seed",
         "code_version", "trained_at", "synthetic", "weights_sha256", "extra")


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: its ``bundle.yaml`` as ``meta`` and float32 ``weights`` (CPU tensors)."""

    meta: dict[str, Any]
    weights: dict[str, torch.Tensor] = field(repr=False)
    source: str
    card: str | None = None

    @property
    def task(self) -> str:
        return str(self.meta["task"])

    @property
    def network(self) -> dict[str, Any]:
        """``{"name": ..., "args": {...}}``: what the task's network factory is built from."""
        return dict(self.meta["network"])

    @property
    def classes(self) -> list[str] | None:
        return None if self.meta.get("classes") is None else list(self.meta["classes"])

    @property
    def preprocessing(self) -> dict[str, Any]:
        return dict(self.meta.get("preprocessing") or {})

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.meta.get("extra") or {})

    @property
    def synthetic(self) -> bool:
        return bool(self.meta.get("synthetic", False))

    def load_into(self, net: Any, what: str | None = None) -> Any:
        """Load the weights into ``net`` strictly and return it in eval mode.

        ``what`` names the network in the error when the weights do not fit it.
        """
        try:
            net.load_state_dict(self.weights, strict=True)
        except RuntimeError as exc:
            name = what or self.network.get("name", "the network")
            raise ModelError(f"{self.source}: weights do not fit {name}: {str(exc).splitlines()[0]}") from None
        return net.eval()


def save_bundle(
    path: str | Path,
    net: Any,
    *,
    task: str,
    network: Mapping[str, Any],
    classes: list[str] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    input: Mapping[str, Any] | None = None,  # noqa: A002 - the bundle.yaml key
    metrics: Mapping[str, Any] | None = None,
    training_data: Mapping[str, Any] | None = None,
    seed: int | None = None,
    code_version: str | None = None,
    trained_at: str | None = None,
    synthetic: bool = False,
    extra: Mapping[str, Any] | None = None,
    card: str | None = None,
    half: bool = True,
) -> Path:
    """Write ``net`` (an ``nn.Module`` or a state dict) as a bundle folder, or a zip when ``path``
    ends in ``.zip``; returns ``path``.

    ``network`` is ``{"name": ..., "args": {...}}``; ``metrics`` is ``{"split": ..., "values": {...}}``.
    ``trained_at`` defaults to now (UTC); ``code_version`` to ``liverfib <version>``. Every value
    must be plain YAML (str, int, float, bool, None, lists, dicts).
    """
    import yaml
    from safetensors.torch import save as st_save

    if "name" not in network:
        raise ValueError("save_bundle: network needs a 'name'")
    state = net.state_dict() if hasattr(net, "state_dict") else dict(net)
    tensors = {k: _stored(v, half) for k, v in state.items()}
    blob = st_save(tensors, metadata={"format": BUNDLE_FORMAT})
    meta = {
        "format": BUNDLE_FORMAT,
        "task": task,
        "network": {"name": network["name"], "args": dict(network.get("args") or {})},
        "classes": None if classes is None else list(classes),
        "preprocessing": dict(preprocessing or {}),
        "input": dict(input or {}),
        "metrics": dict(metrics or {}),
        "training_data": dict(training_data or {}),
        "seed": seed,
        "code_version": code_version or _code_version(),
        "trained_at": trained_at if trained_at is not None else _now(),
        "synthetic": bool(synthetic),
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "extra": dict(extra or {}),
    }
    text = yaml.safe_dump(_plain(meta), sort_keys=False, allow_unicode=True)
    return _write_bundle_files(Path(path), blob, text, card)


def _write_bundle_files(path: Path, blob: bytes, text: str, card: str | None) -> Path:
    """Write weights, card and yaml into the folder ``path`` (yaml last, so a folder with a yaml is
    complete) or into one zip; every file atomically."""
    from liverfib.io.atomic import atomic_write

    if path.suffix == ".zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(WEIGHTS_NAME, blob)
            zf.writestr(YAML_NAME, text)
            if card is not None:
                zf.writestr(CARD_NAME, card)
        return atomic_write(path, data=buf.getvalue())
    if path.is_file():
        raise ModelError(f"{path}: is a file; a bundle is a folder (or a path ending in .zip)")
    atomic_write(path / WEIGHTS_NAME, data=blob)
    if card is not None:
        atomic_write(path / CARD_NAME, data=card)
    atomic_write(path / YAML_NAME, data=text)
    return path


def load_bundle(path: str | Path, *, task: str | tuple[str, ...] | None = None) -> Bundle:
    """Read a bundle folder, its ``bundle.yaml``, or a bundle ``.zip``.

    ``task`` (one name or several) is checked against the bundle's task. Errors (missing, old
    ``.pt`` checkpoint, foreign or corrupt files, weights that do not match the yaml) are
    :class:`ModelError` with the fix in the message.
    """
    import yaml
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = Path(path)
    if path.name == YAML_NAME:
        path = path.parent
    text, blob, card = _read_parts(path)
    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ModelError(f"{path}: {YAML_NAME} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ModelError(f"{path}: expected a {BUNDLE_FORMAT} bundle, found {found!r}")
    missing = [k for k in ("task", "network", "weights_sha256") if k not in meta]
    if missing:
        raise ModelError(f"{path}: {YAML_NAME} lacks {', '.join(missing)}")
    if hashlib.sha256(blob).hexdigest() != meta["weights_sha256"]:
        raise ModelError(f"{path}: {WEIGHTS_NAME} does not match {YAML_NAME} (hash differs); re-save the bundle")
    wanted = (task,) if isinstance(task, str) else task
    if wanted is not None and meta["task"] not in wanted:
        raise ModelError(f"{path}: a '{meta['task']}' model, expected a model for {' or '.join(map(repr, wanted))}")
    try:
        tensors = st_load(blob)
    except SafetensorError as exc:
        raise ModelError(f"{path}: {WEIGHTS_NAME} is not readable ({exc})") from None
    weights = {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}
    meta = {k: meta.get(k) for k in _KEYS} | {k: v for k, v in meta.items() if k not in _KEYS}
    return Bundle(meta=meta, weights=weights, source=str(path), card=card)


def _read_parts(path: Path) -> tuple[str, bytes, str | None]:
    """``(bundle.yaml text, weights bytes, card text or None)`` of a folder or zip bundle."""
    if path.suffix == ".pt" and path.is_file():
        raise ModelError(f"{path}: an old .pt checkpoint; convert it once with "
                         f"'python tools/convert_assets.py {path}' (writes a bundle folder beside it)")
    if path.is_dir():
        if not (path / YAML_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
            raise ModelError(f"{path}: not a model bundle (expected {YAML_NAME} and {WEIGHTS_NAME} in it)")
        card = path / CARD_NAME
        return ((path / YAML_NAME).read_text(encoding="utf-8"), (path / WEIGHTS_NAME).read_bytes(),
                card.read_text(encoding="utf-8") if card.is_file() else None)
    if path.is_file():
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                if not {YAML_NAME, WEIGHTS_NAME} <= names:
                    raise ModelError(f"{path}: zip holds no model bundle (expected {YAML_NAME} and {WEIGHTS_NAME})")
                card = zf.read(CARD_NAME).decode("utf-8") if CARD_NAME in names else None
                return zf.read(YAML_NAME).decode("utf-8"), zf.read(WEIGHTS_NAME), card
        except zipfile.BadZipFile:
            raise ModelError(f"{path}: not a model bundle (neither a bundle folder nor a bundle .zip)") from None
    raise ModelError(f"{path}: model not found (pass a bundle folder or .zip, or 'default')")


def _stored(t: Any, half: bool) -> Any:
    t = t.detach().cpu().contiguous()
    return t.half() if half and t.is_floating_point() else t


def _plain(value: Any) -> Any:
    """Tuples -> lists and numpy scalars -> Python numbers, so ``yaml.safe_dump`` accepts them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def _code_version() -> str:
    from liverfib._version import __version__

    return f"liverfib {__version__}"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
