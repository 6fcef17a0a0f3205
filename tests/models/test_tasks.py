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


def test_a_new_task_is_one_row(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """ARCHITECTURE.md "Adding a task": with only a new TASKS row, the bundle of the new task saves, resolves
    as ``--model default``, loads, builds, runs, is trainable by its train-seg name and is listed."""
    from liverfib.models import assets, catalog, tasks
    from liverfib.models.bundle import save_bundle

    torch.set_num_threads(1)
    row = tasks.Task("toy-seg", "us", "segment2d", TASKS["us-liver-seg"].network, "resize to 32", "a toy 2D task",
                     train_seg_name="toy", shipped=tasks.ShippedModel(
                         "toy_seg_default", "toy segmentation", "segment", "toy_seg_default", "Dice 0 (toy)", "-"))
    monkeypatch.setitem(tasks.TASKS, "toy-seg", row)
    monkeypatch.setattr(assets, "ASSETS_DIR", tmp_path)
    monkeypatch.setattr(catalog, "ASSETS_DIR", tmp_path)
    network = {"name": "attention-unet", "args": {"arch": "attention-unet", "in_channels": 1}}
    trained = build_network("toy-seg", network)
    save_bundle(tmp_path / "toy_seg_default", trained, task="toy-seg", network=network, half=False)

    bundle = load_bundle(assets.resolve_model("default", "toy-seg"), task="toy-seg")
    net = tasks.network_from_bundle(bundle)
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), trained.eval()(x))
    assert task_for_train_name("toy") is row
    summary, text = catalog.list_shipped("toy*")
    assert [(m["name"], m["installed"], m["figure"]) for m in summary["shipped"]] == [
        ("toy_seg_default", True, "Dice 0 (toy)")]
    assert "task toy-seg" in text and catalog.model_accuracy("toy_seg_default")["figure"] == "Dice 0 (toy)"


def test_architecture_example_quotes_the_code() -> None:
    """The "Adding a task" example in ARCHITECTURE.md quotes the mre-seg row, config and loader as they are."""
    import inspect
    from pathlib import Path

    from liverfib.models import tasks
    from liverfib.pipeline import mre_exam

    root = Path(__file__).resolve().parents[2]
    doc = (root / "ARCHITECTURE.md").read_text().split("## Adding a task")[1].split("\n## ")[0]
    row, config, loader = (block.split("```")[0] for block in doc.split("```")[1::2][:3])
    row_lines = row.splitlines()[1:4]
    assert all(ln in inspect.getsource(tasks) for ln in row_lines), row_lines
    yaml_text = (root / "configs" / "mre_seg_phantom.yaml").read_text().splitlines()
    for ln in config.splitlines()[1:]:
        assert any(y.startswith(ln.split("#")[0].rstrip()) for y in yaml_text), ln
    source = inspect.getsource(mre_exam)
    assert all(ln in source for ln in loader.splitlines()[1:] if ln.strip() != "..."), loader
