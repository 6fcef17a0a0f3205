"""tools/convert_assets.py: an old .pt checkpoint becomes a bundle with the same tensors; reruns are no-ops."""

from __future__ import annotations

import runpy
from pathlib import Path

import torch
import yaml

from liverfib.models.bundle import load_bundle

TOOL = Path(__file__).resolve().parents[2] / "tools" / "convert_assets.py"


def test_old_checkpoint_converts_to_an_identical_bundle(tmp_path: Path) -> None:
    tool = runpy.run_path(str(TOOL))
    torch.manual_seed(0)
    state = {"w": torch.randn(3, 4).half(), "n": torch.tensor(7)}
    payload = {"format": "liverfib-mri-staging/1", "model": {"encoder": "small_cnn", "crop_size": 48},
               "state_dict": state, "info": {"data": "SYNTHETIC only", "heldout": {"n": 4}}}
    pt = tmp_path / "old.pt"
    torch.save(payload, pt)
    (tmp_path / "old.yaml").write_text("# a model card\nnote: kept\n")

    dest = tool["convert"](pt)
    assert dest == tmp_path / "old" and not pt.exists() and not (tmp_path / "old.yaml").exists()
    b = load_bundle(dest, task="mri-staging")
    assert b.synthetic and b.meta["metrics"] == {"split": "heldout", "values": {"n": 4}}
    assert b.card is not None and b.card.startswith("# a model card")
    assert torch.equal(b.weights["w"], state["w"].float()) and b.weights["n"].item() == 7
    stored = yaml.safe_load((dest / "bundle.yaml").read_text())
    assert stored["extra"]["info"]["data"] == "SYNTHETIC only"

    before = (dest / "bundle.yaml").read_text()
    torch.save(payload, pt)  # a re-trained asset merged in: the .pt replaces the bundle
    tool["convert"](pt)
    assert (dest / "bundle.yaml").read_text() == before
