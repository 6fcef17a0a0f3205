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
from typing import Any

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


def _features(net: Any, images: np.ndarray, pre: Any, flip: bool, batch: int = 32) -> np.ndarray:
    import torch

    from liverfib.progress import Progress

    feats = []
    with Progress(len(images), "features", "img") as bar:
        for s in range(0, len(images), batch):
            x = torch.from_numpy(np.stack([pre.normalise(im) for im in images[s : s + batch]]))
            with torch.inference_mode():
                f = net.pooled_features(x)
                if flip:
                    f = 0.5 * (f + net.pooled_features(x.flip(-1)))
            feats.append(f.numpy())
            bar.update(len(x))
    return np.concatenate(feats)


def _augmented_rows(
    net: Any, images: np.ndarray, y: np.ndarray, pre: Any, views: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of the clean image, its flip and ``views`` augmented views, with their labels."""
    from liverfib.preprocess.augment import build_us_augment

    aug = build_us_augment(seed)
    blocks = [_features(net, images, pre, flip=False), _features(net, images[:, :, ::-1].copy(), pre, flip=False)]
    for _ in range(views):
        blocks.append(_features(net, np.stack([aug(im) for im in images]), pre, flip=False))
    return np.concatenate(blocks), np.tile(y, len(blocks))


def _fit_linear(
    X: np.ndarray, y: np.ndarray, C: float, head: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the head on standardised features; returns (weight (out, F), bias (out,))."""
    from sklearn.linear_model import LogisticRegression

    if head == "ordinal":  # Frank & Hall: one binary model per threshold P(y > k)
        ws, bs = [], []
        for k in range(len(STAGES) - 1):
            t = (y > k).astype(int)
            m = LogisticRegression(C=C, max_iter=3000, class_weight="balanced", random_state=seed).fit(X, t)
            ws.append(m.coef_[0])
            bs.append(m.intercept_[0])
        return np.stack(ws), np.array(bs)
    m = LogisticRegression(C=C, max_iter=3000, class_weight="balanced", random_state=seed).fit(X, y)
    return m.coef_, m.intercept_


def _set_head(net: Any, mean: np.ndarray, std: np.ndarray, w: np.ndarray, b: np.ndarray) -> None:
    import torch

    linear = net.head[-1]
    with torch.no_grad():
        net.feat_mean.copy_(torch.from_numpy(mean))
        net.feat_std.copy_(torch.from_numpy(std))
        if net.head_kind == "mlp":  # a linear probe cannot initialise an MLP; fine-tuning learns it
            return
        linear.weight.copy_(torch.from_numpy(w.astype(np.float32)))
        linear.bias.copy_(torch.from_numpy(b.astype(np.float32)))


def _head_probs(X: np.ndarray, w: np.ndarray, b: np.ndarray, head: str) -> np.ndarray:
    import torch

    from liverfib.models.staging import ordinal_to_probs

    z = torch.from_numpy(X @ w.T + b).float()
    p = ordinal_to_probs(z) if head == "ordinal" else torch.softmax(z, dim=1)
    p = p / p.sum(dim=1, keepdim=True)
    return p.numpy().astype(np.float64)


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
    import yaml

    from liverfib._version import __version__
    from liverfib.dataset.fingerprint import file_sha256
    from liverfib.evaluation import evaluate_probabilities, fit_thresholds
    from liverfib.models.bundle import save_bundle
    from liverfib.models.registry import get_spec
    from liverfib.models.staging import StagingNet
    from liverfib.preprocess.transforms import PreprocessConfig, UltrasoundPreprocess
    from liverfib.report.jsonio import write_json
    from liverfib.training.finetune import macro_auc

    if cfg.head == "mlp" and cfg.epochs == 0:
        raise ConfigError(
            "head 'mlp' is learnt only by fine-tuning; set epochs > 0 or use head linear/ordinal"
        )
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but no CUDA device is available")
    spec = get_spec(cfg.backbone)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    t0 = time.time()
    pre_cfg = PreprocessConfig(
        img_size=cfg.img_size or spec.img_size,
        fan_mask=cfg.fan_mask,
        fan_crop=cfg.fan_crop,
        nlm=cfg.nlm,
        nlm_h=cfg.nlm_h,
    )
    pre = UltrasoundPreprocess(pre_cfg)
    train_rows = load_split_rows(data_dir, split_csv, "train", cfg.dedup)
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
    net = StagingNet(
        cfg.backbone, head=cfg.head, feature_stages=cfg.feature_stages, pooling=cfg.pooling, pretrained=True
    ).eval()
    img_tr = _images(data_dir, train_rows, pre)
    img_va = _images(data_dir, val_rows, pre)
    X_va = _features(net, img_va, pre, cfg.flip_features)
    if cfg.aug_views > 0:
        X_tr, y_fit = _augmented_rows(net, img_tr, y_tr, pre, cfg.aug_views, cfg.seed)
    else:
        X_tr, y_fit = _features(net, img_tr, pre, cfg.flip_features), y_tr
    mean, std = X_tr.mean(0), X_tr.std(0) + 1e-6
    Z_tr, Z_va = (X_tr - mean) / std, (X_va - mean) / std
    log: list[dict[str, Any]] = []
    best = (-1.0, cfg.C_grid[0], None, None)
    for C in cfg.C_grid:
        w, b = _fit_linear(Z_tr, y_fit, C, cfg.head, cfg.seed)
        p_va = _head_probs(Z_va, w, b, cfg.head)
        auc = macro_auc(y_va, p_va)
        acc = float(np.mean(p_va.argmax(1) == y_va))
        log.append(
            {
                "phase": "probe",
                "C": C,
                "epoch": 0,
                "val_macro_auc": auc,
                "val_accuracy": acc,
                "seconds": round(time.time() - t0, 1),
            }
        )
        if auc > best[0]:
            best = (auc, C, w, b)
    _, best_C, w, b = best
    _set_head(net, mean.astype(np.float32), std.astype(np.float32), w, b)
    if cfg.epochs > 0:
        from liverfib.training.finetune import finetune

        net = finetune(
            net,
            img_tr,
            y_tr,
            img_va,
            y_va,
            pre,
            cfg,
            out_dir,
            device=device,
            log=log,
            t0=t0,
            init_auc=best[0] if cfg.head != "mlp" else -1.0,  # the MLP net holds no probe
        )
    net = net.cpu().eval()
    # validation predictions of the final network
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
        val_labels, p_va, list(STAGES), groups=groups, sources=sources, n_boot=500, seed=cfg.seed
    )
    if cfg.refit_train_val and cfg.epochs == 0:
        if cfg.aug_views > 0:
            X_va_fit, y_va_fit = _augmented_rows(net, img_va, y_va, pre, cfg.aug_views, cfg.seed + 1)
        else:
            X_va_fit, y_va_fit = X_va, y_va
        X_all = np.concatenate([X_tr, X_va_fit])
        mean, std = X_all.mean(0), X_all.std(0) + 1e-6
        w, b = _fit_linear((X_all - mean) / std, np.concatenate([y_fit, y_va_fit]), best_C, cfg.head, cfg.seed)
        _set_head(net, mean.astype(np.float32), std.astype(np.float32), w, b)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_seconds = round(time.time() - t0, 1)
    ckpt = save_bundle(
        out_dir / "model",
        net,
        task="us-staging",
        network={"name": "StagingNet", "args": net.config()},
        classes=list(STAGES),
        preprocessing=pre_cfg.to_dict(),
        input={"size": [pre_cfg.img_size, pre_cfg.img_size], "channels": 3},
        metrics={"split": val_subset, "values": {
            k: val_metrics[k] for k in ("n", "accuracy", "macro_auc", "auc_ge_f2", "kappa_quadratic", "ci95")
        }},
        training_data={"description": str(data_dir), "split_csv": str(split_csv), "n_train": len(train_rows),
                       "fingerprint": f"sha256:{file_sha256(Path(split_csv))} (split CSV)"},
        seed=cfg.seed,
        code_version=f"liverfib {__version__}",
        extra={
            "thresholds": thresholds,
            "train_config": cfg.model_dump(mode="json"),
            "selected_C": best_C,
            "weights_origin": spec.weights,
            "train_seconds": train_seconds,
        },
    )
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
    return {
        "checkpoint": str(ckpt),
        "selected_C": best_C,
        "n_train": len(train_rows),
        "n_val": len(val_rows),
        "train_seconds": train_seconds,
        "weights_origin": spec.weights,
        "val_metrics": val_metrics,
    }
