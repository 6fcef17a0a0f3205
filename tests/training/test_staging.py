"""Staging training: the typed config (defaults < YAML < overrides) and train_staging end to end on
the synthetic folder (frozen-feature probe, dedup, LP-FT, resume)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from liverfib.dataset.split import read_split_csv, write_split_csv
from liverfib.errors import ConfigError, InputError
from liverfib.training.staging import STAGES, StagingConfig, train_staging


def _cfg(run, **changes) -> StagingConfig:
    return StagingConfig(**{**run.config.model_dump(), **changes})


# -------------------------------------------------------------------------------------- config
def test_defaults() -> None:
    cfg = StagingConfig.resolve(None, {})
    assert cfg == StagingConfig()
    assert cfg.backbone == "tf_efficientnet_lite0" and cfg.epochs == 0 and cfg.img_size is None


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match="config option 'learning_rate'") as info:
        StagingConfig.resolve(None, {"learning_rate": 0.1})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("epochs", -1),
        ("batch_size", 0),
        ("lr", 0.0),
        ("weight_decay", -1e-3),
        ("patience", 0),
        ("img_size", "big"),
        ("feature_stages", "one"),
        ("dedup", "perhaps"),
    ],
)
def test_bad_values_name_the_option(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"config option '{option}'"):
        StagingConfig.resolve(None, {option: value})


def test_config_is_frozen() -> None:
    cfg = StagingConfig()
    with pytest.raises(ValidationError):
        cfg.epochs = 3  # type: ignore[misc]


def test_yaml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("epochs: 4\nlr: 0.01\nimg_size: 96\nfeature_stages: [2, 3]\n")
    cfg = StagingConfig.resolve(path, {"epochs": 0, "seed": 7})
    assert cfg.epochs == 0  # override beats YAML
    assert cfg.lr == 0.01 and cfg.img_size == 96 and cfg.feature_stages == (2, 3)  # YAML beats defaults
    assert cfg.seed == 7
    assert cfg.batch_size == StagingConfig().batch_size  # default kept


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("epochs: 1\nbogus: 3\n", "config option 'bogus'"),
        ("- just\n- a list\n", "expected a mapping"),
        ("epochs: many\n", "config option 'epochs'"),
    ],
)
def test_bad_yaml(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        StagingConfig.resolve(path, {})


def test_missing_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        StagingConfig.resolve(tmp_path / "none.yaml", {})


# ------------------------------------------------------------------------ train (frozen probe)
def test_probe_writes_the_run_folder(trained_run) -> None:
    out = trained_run.out_dir
    assert {"model", "config.yaml", "log.csv", "val_metrics.json"} <= {p.name for p in out.iterdir()}
    assert not (out / "last.safetensors").exists()  # no fine-tuning at epochs=0

    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["selected_C"] in trained_run.config.C_grid
    assert saved["preprocess"] == {
        "img_size": 64,
        "fan_mask": False,
        "fan_crop": False,
        "nlm": False,
        "nlm_h": 7.0,
    }
    resolved = {k: v for k, v in saved.items() if k not in ("selected_C", "preprocess")}
    assert StagingConfig(**resolved) == trained_run.config  # the resolved config round-trips

    with (out / "log.csv").open(newline="") as fh:
        log = list(csv.DictReader(fh))
    assert [r["phase"] for r in log] == ["probe"] * len(trained_run.config.C_grid)
    assert [float(r["C"]) for r in log] == list(trained_run.config.C_grid)
    assert all(0.0 <= float(r["val_macro_auc"]) <= 1.0 for r in log)

    metrics = json.loads((out / "val_metrics.json").read_text())
    assert metrics["n"] == 5 == trained_run.summary["n_val"]
    from liverfib.io.jsonio import tidy_floats  # result files keep 12 significant digits

    assert metrics == json.loads(json.dumps(tidy_floats(trained_run.summary["val_metrics"]), default=str))


def test_dedup_collapses_copies(trained_run) -> None:
    train_rows = [r for r in read_split_csv(trained_run.split_csv) if r["split"] == "train"]
    assert len(train_rows) == 16
    # f0_0 has a byte copy and a link stub, f2_0 a link stub, f2_1 a copy; near-duplicates stay
    assert trained_run.summary["n_train"] == 12


def test_no_dedup_keeps_copies(trained_run, tmp_path: Path) -> None:
    summary = train_staging(
        trained_run.dataset.root, trained_run.split_csv, tmp_path / "run", _cfg(trained_run, dedup=False)
    )
    assert summary["n_train"] == 16
    assert summary["n_val"] == 5  # validation is always deduplicated


def test_checkpoint_reloads_with_its_preprocessing(trained_run) -> None:
    from liverfib.inference.predictor import load_predictor
    from liverfib.preprocess.transforms import PreprocessConfig

    predictor = load_predictor(trained_run.checkpoint)
    assert predictor.classes == list(STAGES)
    assert predictor.preprocess.config == PreprocessConfig(img_size=64, fan_mask=False, fan_crop=False)
    assert predictor.bundle.extra["train_config"] == trained_run.config.model_dump(mode="json")
    assert predictor.bundle.meta["training_data"]["n_train"] == 12
    assert predictor.bundle.meta["training_data"]["fingerprint"].startswith("sha256:")
    assert predictor.bundle.meta["metrics"]["split"] == "val"
    assert predictor.describe()["weights_origin"].startswith("imagenet:")

    val = [r for r in read_split_csv(trained_run.split_csv) if r["split"] == "val"]
    out = predictor.predict_paths([trained_run.dataset.root / r["path"] for r in val])
    assert out.errors == []
    assert out.probs.shape == (5, 5)
    np.testing.assert_allclose(out.probs.sum(1), 1.0, atol=1e-5)
    # the reloaded model (fp16 weights, same preprocessing) reproduces the training-time validation
    accuracy = float(
        np.mean([STAGES[i] == r["label"] for i, r in zip(out.probs.argmax(1), val, strict=True)])
    )
    assert accuracy == pytest.approx(trained_run.summary["val_metrics"]["accuracy"])


def test_unknown_backbone_fails_before_any_output(trained_run, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'tf_efficientnet_lite0'"):
        train_staging(
            trained_run.dataset.root,
            trained_run.split_csv,
            tmp_path / "run",
            _cfg(trained_run, backbone="tf_efficientnet_lit0"),
        )
    assert not (tmp_path / "run").exists()


def test_mlp_head_needs_fine_tuning(trained_run, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="head 'mlp'"):
        train_staging(
            trained_run.dataset.root, trained_run.split_csv, tmp_path / "run", _cfg(trained_run, head="mlp")
        )


def test_single_stage_validation_is_an_input_error(trained_run, tmp_path: Path) -> None:
    rows = [r for r in read_split_csv(trained_run.split_csv) if r["split"] == "train" or r["label"] == "F0"]
    split = write_split_csv(rows, tmp_path / "split.csv")
    with pytest.raises(InputError, match="fewer than two stages"):
        train_staging(trained_run.dataset.root, split, tmp_path / "run", trained_run.config)


def test_ordinal_probe(trained_run, tmp_path: Path) -> None:
    from liverfib.inference.predictor import load_predictor

    train_staging(
        trained_run.dataset.root, trained_run.split_csv, tmp_path / "run", _cfg(trained_run, head="ordinal")
    )
    predictor = load_predictor(tmp_path / "run" / "model")
    assert predictor.net.head_kind == "ordinal"
    val = [r for r in read_split_csv(trained_run.split_csv) if r["split"] == "val"]
    probs = predictor.predict_paths([trained_run.dataset.root / r["path"] for r in val]).probs
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_augmented_view_probe(trained_run, tmp_path: Path, monkeypatch) -> None:
    """aug_views=K fits the probe on (2 + K) feature rows per training image, then predicts as usual."""
    from liverfib.inference.predictor import load_predictor
    from liverfib.training import probe as probe_module

    fitted_rows: list[int] = []
    real_fit = probe_module.fit_linear

    def spy(X, y, C, head, seed):
        fitted_rows.append(len(y))
        return real_fit(X, y, C, head, seed)

    monkeypatch.setattr(probe_module, "fit_linear", spy)
    summary = train_staging(
        trained_run.dataset.root, trained_run.split_csv, tmp_path / "run",
        _cfg(trained_run, aug_views=2, refit_train_val=True),
    )
    n_tr, n_va = summary["n_train"], summary["n_val"]
    assert fitted_rows[:-1] == [4 * n_tr] * len(trained_run.config.C_grid)  # clean + flip + 2 views
    assert fitted_rows[-1] == 4 * (n_tr + n_va)  # the train+val refit gets augmented rows too
    predictor = load_predictor(tmp_path / "run" / "model")
    val = [r for r in read_split_csv(trained_run.split_csv) if r["split"] == "val"]
    probs = predictor.predict_paths([trained_run.dataset.root / r["path"] for r in val]).probs
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["aug_views"] == 2


# ------------------------------------------------------------------------------ LP-FT + resume
def test_fine_tuning_writes_last_and_resumes(trained_run, tmp_path: Path) -> None:
    import torch

    from liverfib.models.bundle import load_bundle
    from liverfib.models.staging import StagingNet
    from liverfib.training.resume import read_resume_state

    root, split, out = trained_run.dataset.root, trained_run.split_csv, tmp_path / "run"
    cfg = _cfg(trained_run, epochs=1, batch_size=8)
    train_staging(root, split, out, cfg)
    assert (out / "last.safetensors").is_file()
    with (out / "log.csv").open(newline="") as fh:
        log = list(csv.DictReader(fh))
    tuned = [r for r in log if r["phase"] == "finetune"]
    assert [int(r["epoch"]) for r in tuned] == [1]
    assert np.isfinite(float(tuned[0]["train_loss"]))
    last = read_resume_state(out / "last.safetensors")
    assert last["epoch"] == 0 and last["key"] == cfg.model_dump(mode="json")

    # same config: the finished run is resumed (no epoch left), and the saved model is its best state
    summary = train_staging(root, split, out, cfg)
    assert Path(summary["checkpoint"]).is_dir()
    with (out / "log.csv").open(newline="") as fh:
        assert all(r["phase"] == "probe" for r in csv.DictReader(fh))
    net = StagingNet.from_bundle(load_bundle(out / "model"))
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, last["best"][k].to(v.dtype), rtol=1e-2, atol=1e-2)

    # another config: last.safetensors is not reused, the epoch runs again
    train_staging(root, split, out, _cfg(trained_run, epochs=1, batch_size=8, lr=2e-4))
    with (out / "log.csv").open(newline="") as fh:
        assert [r["phase"] for r in csv.DictReader(fh)].count("finetune") == 1


def test_fine_tuning_mlp_head(trained_run, tmp_path: Path) -> None:
    from liverfib.inference.predictor import load_predictor

    train_staging(
        trained_run.dataset.root,
        trained_run.split_csv,
        tmp_path / "run",
        _cfg(trained_run, head="mlp", epochs=1),
    )
    predictor = load_predictor(tmp_path / "run" / "model")
    assert predictor.net.head_kind == "mlp"
    assert (tmp_path / "run" / "last.safetensors").is_file()
