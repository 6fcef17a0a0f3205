"""``select: cv``: every train row trains the staging probe; C and thresholds come from grouped CV.

The fold logic is checked on synthetic features (a held-out fold's labels must not reach its own
out-of-fold probabilities), the trainer end to end on the synthetic folder."""

from __future__ import annotations

import numpy as np
import pytest

from liverfib.dataset.split import read_split_csv, write_split_csv
from liverfib.errors import ConfigError, InputError
from liverfib.training.probe import cv_probe
from liverfib.training.staging import StagingConfig
from liverfib.training.staging_cv import train_staging_cv


def _features(seed: int = 0, n_groups: int = 40, per_group: int = 3):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_groups) % 5, per_group)
    groups = np.repeat(np.arange(n_groups), per_group).astype(str)
    centre = rng.normal(size=(5, 12))
    X = centre[y] + rng.normal(scale=1.5, size=(len(y), 12)) + np.repeat(rng.normal(size=(n_groups, 12)), per_group, 0)
    return X, y, groups


def test_held_out_labels_do_not_reach_their_own_predictions() -> None:
    X, y, groups = _features()
    strata = y.astype(str)
    C, oof, log = cv_probe(X, y, groups, strata, (0.1,), "linear", 0, folds=4)
    # relabel every row of one group at random: only that group's fold changes, never its own rows
    y2 = y.copy()
    held = groups == "7"
    y2[held] = (y[held] + 2) % 5
    _, oof2, _ = cv_probe(X, y2, groups, strata, (0.1,), "linear", 0, folds=4)
    assert np.allclose(oof[held], oof2[held])
    assert not np.allclose(oof[~held], oof2[~held])  # the relabelled rows did train the other folds
    assert C == 0.1 and len(log) == 1 and np.allclose(oof.sum(1), 1.0)
    assert np.mean(oof.argmax(1) == y) > 0.4  # signal is learnt out of fold (chance 0.2)


def test_C_is_chosen_by_out_of_fold_macro_auc() -> None:
    X, y, groups = _features(seed=1)
    C, _, log = cv_probe(X, y, groups, y.astype(str), (1e-7, 0.1), "linear", 0, folds=4)
    aucs = {row["C"]: row["cv_macro_auc"] for row in log}
    assert C == max(aucs, key=aucs.get) and aucs[0.1] > aucs[1e-7]


def test_a_fold_without_a_stage_is_an_input_error() -> None:
    X, y, groups = _features(n_groups=5)  # one group per stage: a held-out group takes its stage along
    with pytest.raises(InputError, match="lacks a stage"):
        cv_probe(X, y, groups, y.astype(str), (0.1,), "linear", 0, folds=2)


def test_trainer_uses_every_train_row(trained_run, tmp_path) -> None:
    ds = trained_run.dataset
    rows = [{**r, "split": "train"} for r in read_split_csv(trained_run.split_csv)]
    split_csv = write_split_csv(rows, tmp_path / "all.csv")
    cfg = StagingConfig(**{**trained_run.config.model_dump(), "select": "cv", "cv_folds": 3})
    summary = train_staging_cv(ds.root, split_csv, tmp_path / "run", cfg)
    n_distinct = len({r["group"] for r in rows}) + 2  # the q90 and brightened near-copies are distinct contents
    assert summary["n_train"] == n_distinct and summary["n_val"] == 0
    from liverfib.models.bundle import load_bundle

    bundle = load_bundle(tmp_path / "run" / "model")
    meta = bundle.meta
    assert "CV" in meta["metrics"]["split"] and set(meta["extra"]["thresholds"]) == {"ge_f2", "ge_f3", "f4"}
    assert meta["training_data"]["n_train"] == n_distinct


def test_cv_selection_trains_the_probe_only(tmp_path) -> None:
    with pytest.raises(ConfigError, match="epochs: 0"):
        train_staging_cv(tmp_path, tmp_path / "x.csv", tmp_path / "run", StagingConfig(select="cv", epochs=2))
