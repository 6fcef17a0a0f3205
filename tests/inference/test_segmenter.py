"""A trained segmenter: learns the task, maps masks back to input size, survives save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liverfib.errors import ModelError
from liverfib.evaluation.segmentation import overlap_scores
from liverfib.inference.postprocess import largest_component, remove_small_components
from liverfib.inference.segmenter import load_segmenter


def test_trained_segmenter_finds_the_synthetic_liver(trained_seg, make_liver_pair) -> None:
    seg = load_segmenter(trained_seg.checkpoint)
    rng = np.random.default_rng(123)  # unseen images
    dice = []
    for _ in range(4):
        img, truth = make_liver_pair(rng)
        mask = seg.predict(img)
        assert mask.shape == img.shape and mask.dtype == bool
        dice.append(overlap_scores(mask, truth)["dice"])
    assert np.mean(dice) > 0.6, dice


def test_checkpoint_records_config_and_origin(trained_seg) -> None:
    seg = load_segmenter(trained_seg.checkpoint)
    d = seg.describe()
    assert d["arch"] == "unet-lite0" and d["preprocess"]["img_size"] == 64 and d["target"] == "liver"
    assert seg.bundle.extra["weights_origin"].startswith("imagenet:")


def test_staging_checkpoint_is_refused(trained_run) -> None:
    with pytest.raises(ModelError, match="a .us-staging. model, expected a model for .us-liver-seg."):
        load_segmenter(trained_run.checkpoint)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_segmenter(tmp_path / "nope.pt")


def test_postprocess_components() -> None:
    m = np.zeros((50, 50), bool)
    m[5:25, 5:25] = True
    m[40:42, 40:42] = True
    assert largest_component(m).sum() == 400
    assert remove_small_components(m, 0.01).sum() == 400
    assert not largest_component(np.zeros((5, 5), bool)).any()
