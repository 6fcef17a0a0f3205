"""Checkpoint files: fp16 storage, atomic write, and one-line ModelErrors for every bad file."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from liverfib.errors import LiverfibError, ModelError
from liverfib.models.checkpoint import CHECKPOINT_FORMAT, build_model, load_checkpoint, save_checkpoint
from liverfib.models.staging import StagingNet


class _Foreign:
    """A pickled class: weights-only loading must refuse it."""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = StagingNet("mobilenetv3_large_100", pretrained=False, feature_stages=(1,))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", net, classes=["F0", "F1"])


def _one_line_model_error(path: Path) -> str:
    with pytest.raises(ModelError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert isinstance(info.value, LiverfibError)
    assert "\n" not in msg and len(msg) < len(str(path)) + 200, msg
    assert msg.startswith(f"{path}: ")
    return msg


def test_save_stores_float16_and_loads_float32(checkpoint: Path) -> None:
    assert not checkpoint.with_name("model.pt.tmp").exists()
    payload = load_checkpoint(checkpoint)
    assert payload["format"] == CHECKPOINT_FORMAT
    assert payload["classes"] == ["F0", "F1"]
    assert payload["model"]["backbone"] == "mobilenetv3_large_100"
    floats = [v for v in payload["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert payload["state_dict"]["encoder.bn1.num_batches_tracked"].dtype == torch.int64
    net = build_model(payload)
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_missing_file(tmp_path: Path) -> None:
    msg = _one_line_model_error(tmp_path / "nope.pt")
    assert "checkpoint not found" in msg


def test_folder_is_not_a_checkpoint(tmp_path: Path) -> None:
    assert "checkpoint not found" in _one_line_model_error(tmp_path)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("truncated", "failed reading zip archive"),
        ("header_only", "failed reading zip archive"),
        ("empty", "file ends early"),
        ("random", ""),
        ("text", ""),
    ],
)
def test_corrupt_files(checkpoint: Path, tmp_path: Path, name: str, reason: str) -> None:
    good = checkpoint.read_bytes()
    data = {
        "truncated": good[: len(good) // 2],
        "header_only": good[:100],
        "empty": b"",
        "random": os.urandom(4096),
        "text": b"hello, I am not a model\n",
    }[name]
    path = tmp_path / f"{name}.pt"
    path.write_bytes(data)
    msg = _one_line_model_error(path)
    assert "not a readable liverfib checkpoint (" in msg
    assert reason in msg


def test_many_random_byte_files_all_give_model_errors(tmp_path: Path) -> None:
    rng = torch.Generator().manual_seed(0)
    for k in range(20):  # torch's unpickler fails in many different ways on garbage
        path = tmp_path / f"r{k}.pt"
        path.write_bytes(bytes(torch.randint(0, 256, (64 + 97 * k,), generator=rng).tolist()))
        _one_line_model_error(path)


@pytest.mark.parametrize(
    ("payload", "found"),
    [
        ({"format": "other-tool/3", "state_dict": {}}, "'other-tool/3'"),
        ({"state_dict": {}}, "None"),
        ([1, 2, 3], "'list'"),
        (OrderedDict(w=torch.zeros(2)), "None"),  # a bare state dict
    ],
)
def test_foreign_torch_files(tmp_path: Path, payload: object, found: str) -> None:
    path = tmp_path / "foreign.pt"
    torch.save(payload, path)
    msg = _one_line_model_error(path)
    assert msg.endswith(f"expected a {CHECKPOINT_FORMAT} checkpoint, found {found}")


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "x": _Foreign()}, path)
    msg = _one_line_model_error(path)
    assert "not a readable liverfib checkpoint" in msg and "_Foreign" in msg


def test_weights_that_do_not_fit_the_backbone(checkpoint: Path) -> None:
    payload = load_checkpoint(checkpoint)
    payload["model"] = {**payload["model"], "backbone": "tf_efficientnet_lite0"}
    with pytest.raises(ModelError, match="checkpoint weights do not fit tf_efficientnet_lite0") as info:
        build_model(payload)
    assert "\n" not in str(info.value)
