"""Training of ultrasound staging models.

Two regimes, one module (:class:`~liverfib.models.staging.StagingNet`):

* ``epochs == 0`` (default, CPU-friendly): frozen ImageNet backbone, multi-scale pooled features
  (with horizontal-flip averaging), standardised, then a class-balanced logistic regression whose
  regularisation ``C`` is chosen on the validation rows by macro-AUC. The fitted scaler and
  coefficients are written into the network's buffers and linear head, so inference is one
  torch forward pass.
  With ``aug_views = K > 0`` the probe is fitted on feature-space augmentation: every training
  image contributes its clean view, its horizontal flip and K ultrasound-augmented views
  (speckle, TGC bands, gamma, blur, small affine, depth crop) as separate rows, which regularises
  the probe toward augmentation-invariant directions. Prediction is unchanged (one forward pass on
  the clean image). Measured (BENCHMARKS.md §2b): grouped CV accuracy 0.626 -> 0.641, grouped test
  0.663 -> 0.640, i.e. no reliable gain; an option (``configs/aug_views.yaml``), off by default.
* ``epochs > 0``: the linear probe above initialises the head, then the whole network is fine-tuned
  (LP-FT, which forgets less than fine-tuning from a random head) with Adam, albumentations
  ultrasound augmentation, an inverse-frequency sampler, early stopping on validation macro-AUC,
  a CSV log and a resumable ``last.safetensors``.

Exact copies are collapsed before training (copies are oversampling, not data) unless
``dedup=False``.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from liverfib.config import ResolvableConfig
from liverfib.errors import ConfigError, InputError

__all__ = ["STAGES", "StagingConfig", "load_split_rows", "train_staging"]

STAGES = ("F0", "F1", "F2", "F3", "F4")


class StagingConfig(ResolvableConfig):
    """Resolved training configuration (defaults < YAML < CLI flags); saved beside the checkpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backbone: str = "tf_efficientnet_lite0"
    img_size: int | None = None  # None: the backbone's default
    fan_mask: bool = False
    fan_crop: bool = False
    nlm: bool = False
    nlm_h: float = 7.0
    feature_stages: tuple[int, ...] = (1, 2, 3)
    pooling: str = "mean"
    head: str = "linear"
    epochs: int = Field(0, ge=0)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    patience: int = Field(3, ge=1)
    C_grid: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1)
    dedup: bool = True
    flip_features: bool = True
    aug_views: int = Field(0, ge=0, le=64)
    refit_train_val: bool = False
    select: Literal["val", "cv"] = "val"  # cv: every train row trains; C and thresholds by grouped CV
    cv_folds: int = Field(5, ge=2, le=20)
    seed: int = 0


def load_split_rows(data_dir: Path, split_csv: Path, subset: str, dedup: bool) -> list[dict[str, str]]:
    from liverfib.dataset.fingerprint import file_sha256
    from liverfib.dataset.split import read_split_csv
    from liverfib.io import resolve_file

    rows = [r for r in read_split_csv(split_csv) if r["split"] == subset]
    if not rows:
        raise InputError(f"{split_csv}: no rows with split '{subset}'")
    unknown = sorted({r["label"] for r in rows} - set(STAGES))
    if unknown:
        raise InputError(f"{split_csv}: labels {unknown} are not METAVIR stages {', '.join(STAGES)}")
    if not dedup:
        return rows
    seen: set[str] = set()
    out = []
    for r in rows:
        sha = file_sha256(resolve_file(data_dir / r["path"]))
        if sha not in seen:
            seen.add(sha)
            out.append(r)
    return out


def _images(data_dir: Path, rows: list[dict[str, str]], pre: Any) -> np.ndarray:
    """Read and geometry-preprocess rows -> uint8 ``(N, S, S)``."""
    from liverfib.io import read_image
    from liverfib.progress import Progress

    out = []
    with Progress(len(rows), "read", "img") as bar:
        for r in rows:
            out.append(pre.geometry(read_image(data_dir / r["path"]).array))
            bar.update()
    return np.stack(out)


def train_staging(
    data_dir: Path,
    split_csv: Path,
    out_dir: Path,
    cfg: StagingConfig,
    *,
    device: str = "cpu",
    val_subset: str = "val",
) -> dict[str, Any]:
    """Train per ``cfg``; write the bundle ``model/``, ``config.yaml``, ``log.csv``, ``val_metrics.json`` in ``out_dir``."""
    import torch

    from liverfib.models.registry import get_spec
    from liverfib.models.staging import StagingNet
    from liverfib.training.probe import fit_probe

    _check_options(cfg, device)
    spec = get_spec(cfg.backbone)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    t0 = time.time()
    pre_cfg, pre = preprocessing(cfg, spec)
    train_rows, val_rows, y_tr, y_va = _split_rows(data_dir, split_csv, val_subset, cfg.dedup)
    net = StagingNet(
        cfg.backbone, head=cfg.head, feature_stages=cfg.feature_stages, pooling=cfg.pooling, pretrained=True
    ).eval()
    img_tr = _images(data_dir, train_rows, pre)
    img_va = _images(data_dir, val_rows, pre)
    X_tr, y_fit, X_va = _probe_rows(net, img_tr, y_tr, img_va, pre, cfg)
    log: list[dict[str, Any]] = []
    probe_auc, best_C = fit_probe(net, X_tr, y_fit, X_va, y_va, cfg, log, t0)
    if cfg.epochs > 0:
        from liverfib.training.finetune import finetune

        net = finetune(
            net, img_tr, y_tr, img_va, y_va, pre, cfg, out_dir, device=device, log=log, t0=t0,
            init_auc=probe_auc if cfg.head != "mlp" else -1.0,  # the MLP net holds no probe
        )
    net = net.cpu().eval()
    thresholds, val_metrics = _validation_metrics(net, img_va, y_va, val_rows, pre, cfg.seed)
    if cfg.refit_train_val and cfg.epochs == 0:
        _refit_train_val(net, X_tr, y_fit, X_va, img_va, y_va, pre, cfg, best_C)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_seconds = round(time.time() - t0, 1)
    run = {"data_dir": data_dir, "split_csv": split_csv, "val_subset": val_subset, "n_train": len(train_rows),
           "selected_C": best_C, "weights_origin": spec.weights, "train_seconds": train_seconds}
    ckpt = _save_model(out_dir, net, cfg, pre_cfg, val_metrics, thresholds, run)
    _write_run_files(out_dir, cfg, pre_cfg, best_C, log, val_metrics)
    return {"checkpoint": str(ckpt), "selected_C": best_C, "n_train": len(train_rows), "n_val": len(val_rows),
            "train_seconds": train_seconds, "weights_origin": spec.weights, "val_metrics": val_metrics}


def preprocessing(cfg: StagingConfig, spec: Any) -> tuple[Any, Any]:
    """The config's ``(PreprocessConfig, UltrasoundPreprocess)`` (image size: the backbone's default if unset)."""
    from liverfib.preprocess.transforms import PreprocessConfig, UltrasoundPreprocess

    pre_cfg = PreprocessConfig(
        img_size=cfg.img_size or spec.img_size, fan_mask=cfg.fan_mask, fan_crop=cfg.fan_crop, nlm=cfg.nlm, nlm_h=cfg.nlm_h
    )
    return pre_cfg, UltrasoundPreprocess(pre_cfg)


def _check_options(cfg: StagingConfig, device: str) -> None:
    import torch

    if cfg.head == "mlp" and cfg.epochs == 0:
        raise ConfigError(
            "head 'mlp' is learnt only by fine-tuning; set epochs > 0 or use head linear/ordinal"
        )
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but no CUDA device is available")


def _probe_rows(
    net: Any, img_tr: np.ndarray, y_tr: np.ndarray, img_va: np.ndarray, pre: Any, cfg: StagingConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probe features: training rows (N', F) with their labels (clean, or clean + flip + augmented
    views), and validation rows (N_va, F)."""
    from liverfib.training.probe import augmented_rows, features

    X_va = features(net, img_va, pre, cfg.flip_features)
    if cfg.aug_views > 0:
        X_tr, y_fit = augmented_rows(net, img_tr, y_tr, pre, cfg.aug_views, cfg.seed)
    else:
        X_tr, y_fit = features(net, img_tr, pre, cfg.flip_features), y_tr
    return X_tr, y_fit, X_va


def _split_rows(
    data_dir: Path, split_csv: Path, val_subset: str, dedup: bool
) -> tuple[list[dict[str, str]], list[dict[str, str]], np.ndarray, np.ndarray]:
    """Train and validation rows with their stage indices; both must hold at least two stages."""
    train_rows = load_split_rows(data_dir, split_csv, "train", dedup)
    val_rows = load_split_rows(data_dir, split_csv, val_subset, dedup=True)
    y_tr = np.array([STAGES.index(r["label"]) for r in train_rows])
    y_va = np.array([STAGES.index(r["label"]) for r in val_rows])
    if len(np.unique(y_tr)) < 2:
        raise InputError("training rows hold fewer than two stages; nothing to learn")
    if len(np.unique(y_va)) < 2:  # macro-AUC, which selects C and epochs, is undefined then
        raise InputError(
            f"'{val_subset}' rows hold fewer than two stages ({sorted({r['label'] for r in val_rows})}); "
            "model selection needs at least two: re-split or pass another --val-subset"
        )
    return train_rows, val_rows, y_tr, y_va


def _validation_metrics(
    net: Any, img_va: np.ndarray, y_va: np.ndarray, val_rows: list[dict[str, str]], pre: Any, seed: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """Thresholds fitted on, and metrics of, the final network's validation predictions."""
    import torch

    from liverfib.evaluation import evaluate_probabilities, fit_thresholds

    with torch.inference_mode():
        p_va = np.concatenate(
            [
                torch.softmax(
                    net(torch.from_numpy(np.stack([pre.normalise(im) for im in img_va[s : s + 32]]))), 1
                ).numpy()
                for s in range(0, len(img_va), 32)
            ]
        ).astype(np.float64)
    p_va /= p_va.sum(1, keepdims=True)
    val_labels = [STAGES[i] for i in y_va]
    groups = [r.get("group") or r.get("cluster") or r["path"] for r in val_rows]
    sources = [r.get("source") or "?" for r in val_rows]
    thresholds = fit_thresholds(val_labels, p_va, list(STAGES))
    val_metrics = evaluate_probabilities(
        val_labels, p_va, list(STAGES), groups=groups, sources=sources, n_boot=500, seed=seed
    )
    return thresholds, val_metrics


def _refit_train_val(
    net: Any, X_tr: np.ndarray, y_fit: np.ndarray, X_va: np.ndarray, img_va: np.ndarray, y_va: np.ndarray,
    pre: Any, cfg: StagingConfig, best_C: float,
) -> None:
    """Refit the probe with the chosen C on train + validation rows (augmented views too)."""
    from liverfib.training.probe import augmented_rows, refit_probe

    if cfg.aug_views > 0:
        X_va_fit, y_va_fit = augmented_rows(net, img_va, y_va, pre, cfg.aug_views, cfg.seed + 1)
    else:
        X_va_fit, y_va_fit = X_va, y_va
    refit_probe(net, np.concatenate([X_tr, X_va_fit]), np.concatenate([y_fit, y_va_fit]), best_C, cfg.head, cfg.seed)


def _save_model(
    out_dir: Path, net: Any, cfg: StagingConfig, pre_cfg: Any, val_metrics: dict[str, Any],
    thresholds: dict[str, float], run: dict[str, Any],
) -> Path:
    """The ``us-staging`` bundle in ``out_dir/model`` with its validation metrics and provenance."""
    from liverfib._version import __version__
    from liverfib.dataset.fingerprint import file_sha256
    from liverfib.models.bundle import save_bundle

    return save_bundle(
        out_dir / "model",
        net,
        task="us-staging",
        network={"name": "StagingNet", "args": net.config()},
        classes=list(STAGES),
        preprocessing=pre_cfg.to_dict(),
        input={"size": [pre_cfg.img_size, pre_cfg.img_size], "channels": 3},
        metrics={"split": run["val_subset"], "values": {
            k: val_metrics[k] for k in ("n", "accuracy", "macro_auc", "auc_ge_f2", "kappa_quadratic", "ci95")
        }},
        training_data={"description": str(run["data_dir"]), "split_csv": str(run["split_csv"]), "n_train": run["n_train"],
                       "fingerprint": f"sha256:{file_sha256(Path(run['split_csv']))} (split CSV)"},
        seed=cfg.seed,
        code_version=f"liverfib {__version__}",
        extra={
            "thresholds": thresholds,
            "train_config": cfg.model_dump(mode="json"),
            "selected_C": run["selected_C"],
            "weights_origin": run["weights_origin"],
            "train_seconds": run["train_seconds"],
        },
    )


def _write_run_files(
    out_dir: Path, cfg: StagingConfig, pre_cfg: Any, best_C: float, log: list[dict[str, Any]], val_metrics: dict[str, Any]
) -> None:
    """``config.yaml`` (resolved config + chosen C), ``log.csv`` and ``val_metrics.json``."""
    import yaml

    from liverfib.io.jsonio import write_json

    (out_dir / "config.yaml").write_text(
        yaml.safe_dump(
            {**cfg.model_dump(mode="json"), "selected_C": best_C, "preprocess": pre_cfg.to_dict()},
            sort_keys=False,
        )
    )
    with (out_dir / "log.csv").open("w", newline="") as fh:
        keys = sorted({k for row in log for k in row}, key=lambda k: (k != "phase", k))
        wr = csv.DictWriter(fh, fieldnames=keys)
        wr.writeheader()
        wr.writerows(log)
    write_json(val_metrics, out_dir / "val_metrics.json")
