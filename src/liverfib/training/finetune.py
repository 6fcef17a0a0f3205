"""LP-FT fine-tuning loop for :class:`~liverfib.models.staging.StagingNet` (see training.staging)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["finetune", "macro_auc"]


def macro_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mean one-vs-rest ROC AUC over the classes present in ``y`` (``p``: ``(N, K)``); NaN if < 2."""
    from sklearn.metrics import roc_auc_score

    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    return float(np.mean([roc_auc_score(y == k, p[:, k]) for k in present]))


def finetune(
    net: Any,
    img_tr: np.ndarray,
    y_tr: np.ndarray,
    img_va: np.ndarray,
    y_va: np.ndarray,
    pre: Any,
    cfg: Any,
    out_dir: Path,
    *,
    device: str,
    log: list[dict[str, Any]],
    t0: float,
    init_auc: float = -1.0,
) -> Any:
    """Fine-tune all weights from the linear-probe head; early stopping on val macro-AUC.

    BatchNorm layers stay in eval mode (ImageNet statistics), which keeps small-batch CPU training
    stable. ``out_dir/last.safetensors`` is written every epoch and resumed from when present. The probe
    network (validation macro-AUC ``init_auc``) is kept unless an epoch beats it.
    """
    import torch

    from liverfib.preprocess.augment import build_us_augment
    from liverfib.training.trainer import fit

    torch.manual_seed(cfg.seed)
    dev = torch.device(device)
    net = net.to(dev)
    aug = build_us_augment(cfg.seed)
    counts = np.bincount(y_tr, minlength=int(y_tr.max()) + 1).astype(float)
    weights = torch.as_tensor(1.0 / counts[y_tr], dtype=torch.double)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    out_dir.mkdir(parents=True, exist_ok=True)

    def batches(epoch: int) -> Iterator[tuple[Any, np.ndarray]]:
        """Class-balanced draw with replacement (one epoch = len(y_tr) images), augmented."""
        from tqdm import tqdm

        order = torch.multinomial(weights, len(y_tr), replacement=True, generator=gen).numpy()
        yield from tqdm(_image_batches(img_tr, order, pre, cfg.batch_size, dev, aug),
                        total=int(np.ceil(len(order) / cfg.batch_size)), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)

    def validate(net: Any, state: Any) -> tuple[float, dict[str, float]]:
        net.eval()
        with torch.inference_mode():
            p_va = np.concatenate([torch.softmax(net(x).float(), 1).cpu().numpy()
                                   for x, _ in _image_batches(img_va, np.arange(len(y_va)), pre, cfg.batch_size, dev)])
        auc = macro_auc(y_va, p_va)
        return auc, {"val_macro_auc": auc, "val_accuracy": float(np.mean(p_va.argmax(1) == y_va))}

    fit(net, opt, _classification_loss(y_tr, cfg.head, dev), batches, epochs=cfg.epochs, scheduler=sched,
        scheduler_per="epoch", validate=validate, initial_score=init_auc, patience=cfg.patience, amp=True,
        device=device, train_mode=_train_with_frozen_batchnorm, after_epoch=[_epoch_logger(log, t0)],
        resume=out_dir / "last.safetensors", resume_key=cfg.model_dump(mode="json"), generators=[gen])
    return net


def _image_batches(
    images: np.ndarray, idx: np.ndarray, pre: Any, batch_size: int, dev: Any, aug: Any = None
) -> Iterator[tuple[Any, np.ndarray]]:
    """``(x (B, C, H, W) on dev, indices)`` per batch of ``idx``, augmented first when ``aug`` is given."""
    import torch

    for s in range(0, len(idx), batch_size):
        sel = idx[s : s + batch_size]
        ims = [aug(images[i]) if aug is not None else images[i] for i in sel]
        yield torch.from_numpy(np.stack([pre.normalise(im) for im in ims])).to(dev), sel


def _classification_loss(y_tr: np.ndarray, head: str, dev: Any) -> Any:
    """``loss_fn`` of :func:`fit`: NLL of the ordinal head's log-probabilities, else cross-entropy."""
    import torch
    import torch.nn.functional as F

    def loss_fn(net: Any, batch: tuple[Any, np.ndarray], state: Any) -> tuple[Any, dict[str, float]]:
        x, sel = batch
        y = torch.from_numpy(y_tr[sel]).to(dev)
        out = net(x)
        loss = F.nll_loss(out, y) if head == "ordinal" else F.cross_entropy(out, y)
        return loss, {"loss": float(loss.detach()), "n": len(sel)}

    return loss_fn


def _train_with_frozen_batchnorm(net: Any) -> None:
    """BatchNorm layers stay in eval mode (ImageNet statistics): stable small-batch CPU training."""
    import torch

    net.train()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()


def _epoch_logger(log: list[dict[str, Any]], t0: float) -> Any:
    """An ``after_epoch`` hook: the epoch's mean train loss and validation scores into ``log`` and stdout."""

    def log_epoch(state: Any, logs: dict[str, Any]) -> None:
        rows = [r for r in state.rows if r["epoch"] == state.epoch + 1]
        n = sum(r["n"] for r in rows)
        loss = sum(r["loss"] * r["n"] for r in rows) / max(n, 1)
        log.append({"phase": "finetune", "epoch": state.epoch + 1, "train_loss": loss,
                    "val_macro_auc": logs["val_macro_auc"], "val_accuracy": logs["val_accuracy"],
                    "seconds": round(time.time() - t0, 1)})
        print(f"epoch {state.epoch + 1}: loss {loss:.4f} val macro-AUC {logs['val_macro_auc']:.4f} "
              f"acc {logs['val_accuracy']:.4f}", flush=True)

    return log_epoch
