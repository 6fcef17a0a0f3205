"""The task registry: every row builds a network that its shipped bundle's weights fit exactly."""

from __future__ import annotations

import pytest
import torch

from liverfib.errors import ConfigError
from liverfib.models.assets import ASSETS_DIR
from liverfib.models.bundle import load_bundle
from liverfib.models.tasks import TASKS, build_network, get_task, task_for_train_name, task_rows


@pytest.mark.parametrize("name", sorted(t.name for t in TASKS.values() if t.default_bundle))
def test_registry_network_fits_the_shipped_bundle(name: str) -> None:
    torch.set_num_threads(1)
    bundle = load_bundle(ASSETS_DIR / get_task(name).default_bundle, task=name)
    net = build_network(name, bundle.network)
    bundle.load_into(net)  # strict: every tensor name and shape must match
    assert not net.training


def test_rows_and_lookups() -> None:
    rows = task_rows()
    assert [r["name"] for r in rows] == sorted(TASKS)
    assert {r["kind"] for r in rows} <= {"classify", "segment2d", "segment3d", "regress"}
    assert task_for_train_name("us-liver").name == "us-liver-seg"
    with pytest.raises(ConfigError, match="Did you mean 'mri-seg'"):
        get_task("mri-sge")
    with pytest.raises(ConfigError, match="us-liver"):
        task_for_train_name("us-livr")
