"""LP-FT fine-tuning loop for :class:`~liverfib.models.staging.StagingNet` (see training.staging)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["finetune"]


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
    stable. ``out_dir/last.pt`` is written every epoch and resumed from when present. The probe
    network (validation macro-AUC ``init_auc``) is kept unless an epoch beats it.
    """
    import torch
    import torch.nn.functional as F

    from liverfib.preprocess.augment import build_us_augment
    from liverfib.progress import Progress
    from liverfib.training.staging import _macro_auc

    torch.manual_seed(cfg.seed)
    dev = torch.device(device)
    net = net.to(dev)
    aug = build_us_augment(cfg.seed)
    counts = np.bincount(y_tr, minlength=int(y_tr.max()) + 1).astype(float)
    weights = torch.as_tensor(1.0 / counts[y_tr], dtype=torch.double)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    use_amp = dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    last = out_dir / "last.pt"
    start_epoch, best_auc, stale = 0, init_auc, 0
    best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    if last.is_file():
        state = torch.load(last, map_location=dev, weights_only=False)
        if state.get("config") == cfg.model_dump(mode="json"):
            net.load_state_dict(state["net"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            gen.set_state(state["gen"])
            start_epoch, best_auc, best_state, stale = (
                state["epoch"] + 1,
                state["best_auc"],
                state["best"],
                state["stale"],
            )

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.nll_loss(out, y) if cfg.head == "ordinal" else F.cross_entropy(out, y)

    def batches(images: np.ndarray, idx: np.ndarray, train: bool):
        for s in range(0, len(idx), cfg.batch_size):
            sel = idx[s : s + cfg.batch_size]
            ims = [aug(images[i]) if train else images[i] for i in sel]
            yield torch.from_numpy(np.stack([pre.normalise(im) for im in ims])).to(dev), sel

    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
        order = torch.multinomial(weights, len(y_tr), replacement=True, generator=gen).numpy()
        total, n = 0.0, 0
        bar = Progress(int(np.ceil(len(order) / cfg.batch_size)), f"epoch {epoch + 1}/{cfg.epochs}", "batch")
        for x, sel in batches(img_tr, order, True):
            y = torch.from_numpy(y_tr[sel]).to(dev)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, enabled=use_amp):
                loss = loss_fn(net(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total += float(loss.detach()) * len(sel)
            n += len(sel)
            bar.update(1, loss=total / n)
        bar.close()
        sched.step()
        net.eval()
        probs = []
        with torch.inference_mode():
            for x, _ in batches(img_va, np.arange(len(y_va)), False):
                probs.append(torch.softmax(net(x).float(), 1).cpu().numpy())
        p_va = np.concatenate(probs)
        auc = _macro_auc(y_va, p_va)
        acc = float(np.mean(p_va.argmax(1) == y_va))
        log.append(
            {
                "phase": "finetune",
                "epoch": epoch + 1,
                "train_loss": total / max(n, 1),
                "val_macro_auc": auc,
                "val_accuracy": acc,
                "seconds": round(time.time() - t0, 1),
            }
        )
        print(
            f"epoch {epoch + 1}: loss {total / max(n, 1):.4f} val macro-AUC {auc:.4f} acc {acc:.4f}",
            flush=True,
        )
        if auc > best_auc:
            best_auc, stale = auc, 0
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
        torch.save(
            {
                "net": net.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "gen": gen.get_state(),
                "epoch": epoch,
                "best_auc": best_auc,
                "best": best_state,
                "stale": stale,
                "config": cfg.model_dump(mode="json"),
            },
            last,
        )
        if stale >= cfg.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return net
