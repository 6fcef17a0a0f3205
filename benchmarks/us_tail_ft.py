"""Partial fine-tuning of the staging network on CPU: train only the last stages ("tail").

Why: plain fine-tuning of the whole network forgets on this small set (BENCHMARKS §3), and a full
fine-tune is slow on 2 CPU cores. Here the early blocks (stem … blocks.4 of EfficientNet-Lite, the
high-resolution part that costs most compute) stay frozen at their ImageNet weights. Their outputs
are cached once for the clean image, its horizontal flip and K ultrasound-augmented views; then the
tail (blocks.5, blocks.6, conv_head) and the linear head are trained on the cache. The result is an
ordinary :class:`~liverfib.models.staging.StagingNet` (same feature layout as the shipped probe).

Protocol (no test tuning): the recipe is chosen on the grouped split's *val* part; ``--eval test``
then reports the untouched test part once; ``--cv`` runs grouped 5-fold CV of the fixed recipe.

usage:
  python benchmarks/us_tail_ft.py DATA --split runs/splits/grouped.csv --out runs/tail_ft [--views 8]
         [--epochs 12] [--eval val|test] [--cv] [--threads 1] [--save-model]
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

from liverfib.dataset.audit import audit_folder
from liverfib.evaluation import evaluate_probabilities
from liverfib.io import read_image
from liverfib.models.staging import StagingNet
from liverfib.preprocess.augment import build_us_augment
from liverfib.preprocess.transforms import PreprocessConfig, UltrasoundPreprocess

CLASSES = ["F0", "F1", "F2", "F3", "F4"]
KEYS = ["accuracy", "macro_auc", "auc_ge_f2", "auc_ge_f3", "auc_f4", "kappa_quadratic"]
TAP = {1: 1, 2: 2, 4: 3}  # blocks index -> feature stage pooled by StagingNet(feature_stages=(1, 2, 3))


def trunk(net: StagingNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen part: ``x`` -> (pooled stages 1–3 ``(B, 176)``, blocks.4 map ``(B, 112, h, w)``)."""
    e = net.encoder
    h = e.bn1(e.conv_stem(x))
    pooled = []
    for i in range(5):
        h = e.blocks[i](h)
        if i in TAP:
            pooled.append(h.mean(dim=(2, 3)))
    return torch.cat(pooled, 1), h


class Tail(torch.nn.Module):
    """blocks.5, blocks.6, conv_head, bn2, pooling; plus standardisation and the linear head."""

    def __init__(self, net: StagingNet) -> None:
        super().__init__()
        e = net.encoder
        self.blocks = copy.deepcopy(torch.nn.Sequential(e.blocks[5], e.blocks[6]))
        self.conv_head, self.bn2 = copy.deepcopy(e.conv_head), copy.deepcopy(e.bn2)
        self.register_buffer("mean", torch.zeros(net.feat_dim))
        self.register_buffer("std", torch.ones(net.feat_dim))
        self.head = torch.nn.Linear(net.feat_dim, 5)
        self.drop = torch.nn.Dropout(0.3)

    def raw(self, pooled: torch.Tensor, fmap: torch.Tensor) -> torch.Tensor:
        h = self.bn2(self.conv_head(self.blocks(fmap)))
        return torch.cat([pooled, h.mean(dim=(2, 3))], 1)

    def forward(self, pooled: torch.Tensor, fmap: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop((self.raw(pooled, fmap) - self.mean) / self.std))


def cache(net: StagingNet, images: list[np.ndarray], views: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per image: views 0 = clean, 1 = flip, 2.. = augmented. Returns pooled (N,V,176), maps f16."""
    pre = UltrasoundPreprocess
    aug = build_us_augment(seed)
    P, M = [], []
    t0 = time.time()
    for k in range(0, len(images), 16):
        batch = []
        for img in images[k : k + 16]:
            vs = [img, img[:, ::-1]] + [aug(img) for _ in range(views)]
            batch += [pre.normalise(np.ascontiguousarray(v)) for v in vs]
        with torch.inference_mode():
            p, m = trunk(net, torch.from_numpy(np.stack(batch)))
        V = 2 + views
        P.append(p.reshape(-1, V, p.shape[1]).numpy())
        M.append(m.reshape(-1, V, *m.shape[1:]).half().numpy())
        if k % 160 == 0:
            print(f"cache {k + len(images[k:k + 16])}/{len(images)} {time.time() - t0:.0f}s", flush=True)
    return np.concatenate(P), np.concatenate(M)


def tail_features(tail: Tail, P: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Raw features for every (image, view) -> (N, V, F)."""
    out = []
    tail.eval()
    N, V = P.shape[:2]
    p2, m2 = P.reshape(N * V, -1), M.reshape(N * V, *M.shape[2:])
    with torch.inference_mode():
        for k in range(0, N * V, 256):
            out.append(tail.raw(torch.from_numpy(p2[k : k + 256]), torch.from_numpy(m2[k : k + 256]).float()).numpy())
    return np.concatenate(out).reshape(N, V, -1)


def probe(X: np.ndarray, y: np.ndarray, C: float) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=3000, class_weight="balanced").fit(X, y)


def predict_clean(tail: Tail, P: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Softmax of the head on flip-averaged standardised features (as the shipped model predicts)."""
    Fz = tail_features(tail, P[:, :2], M[:, :2]).mean(1)
    with torch.inference_mode():
        z = tail.head((torch.from_numpy(Fz) - tail.mean) / tail.std)
    return torch.softmax(z, 1).numpy()


def fit_recipe(
    net: StagingNet, P: np.ndarray, M: np.ndarray, y: np.ndarray, a: argparse.Namespace,
    val: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, log: list | None = None,
) -> tuple[Tail, dict[str, np.ndarray]]:
    """Probe init (LP) then tail fine-tuning (FT). Returns the tail and probe-only models' probs fn."""
    torch.manual_seed(a.seed)
    tail = Tail(net)
    F0 = tail_features(tail, P, M)  # frozen-tail features of all views
    clean = F0[:, :2].mean(1)
    mean, std = F0.reshape(-1, F0.shape[2]).mean(0), F0.reshape(-1, F0.shape[2]).std(0) + 1e-6
    tail.mean.copy_(torch.from_numpy(mean))
    tail.std.copy_(torch.from_numpy(std))
    z = lambda X: (X - mean) / std  # noqa: E731
    lr_clean = probe(z(clean), y, a.C)
    Va = F0.shape[1]
    lr_aug = probe(z(F0.reshape(-1, F0.shape[2])), np.repeat(y, Va), a.C)
    models = {"probe_clean": lr_clean, "probe_aug": lr_aug}
    init = lr_aug if a.init == "aug" else lr_clean
    with torch.no_grad():
        tail.head.weight.copy_(torch.from_numpy(init.coef_).float())
        tail.head.bias.copy_(torch.from_numpy(init.intercept_).float())
    if a.epochs == 0:
        return tail, models
    ref = {n: p.detach().clone() for n, p in tail.named_parameters()}
    opt = torch.optim.AdamW(
        [{"params": list(tail.blocks.parameters()) + list(tail.conv_head.parameters()) + list(tail.bn2.parameters()),
          "lr": a.lr}, {"params": tail.head.parameters(), "lr": a.lr_head}], weight_decay=0.0)
    steps_per_epoch = int(np.ceil(len(y) / a.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[a.lr, a.lr_head], total_steps=a.epochs * steps_per_epoch,
                                                pct_start=0.15)
    counts = np.bincount(y, minlength=5).astype(float)
    w = torch.as_tensor(1.0 / np.maximum(counts[y], 1), dtype=torch.double)
    gen = torch.Generator().manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    for ep in range(a.epochs):
        tail.train()
        for m_ in tail.modules():
            if isinstance(m_, torch.nn.BatchNorm2d):
                m_.eval()
        order = torch.multinomial(w, len(y), replacement=True, generator=gen).numpy()
        tot = 0.0
        for s in range(0, len(order), a.batch):
            sel = order[s : s + a.batch]
            v = rng.integers(0, P.shape[1], len(sel))
            p = torch.from_numpy(P[sel, v])
            m = torch.from_numpy(M[sel, v]).float()
            out = tail(p, m)
            loss = F.cross_entropy(out, torch.from_numpy(y[sel]), label_smoothing=a.smooth)
            if a.l2sp > 0:
                loss = loss + a.l2sp * sum(((q - ref[n]) ** 2).sum() for n, q in tail.named_parameters()
                                           if not n.startswith("head"))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(sel)
        row = {"epoch": ep + 1, "loss": tot / len(order)}
        if val is not None:
            Pv, Mv, yv = val
            pr = predict_clean(tail, Pv, Mv)
            row |= {"val_acc": float(np.mean(pr.argmax(1) == yv)),
                    "val_macro_auc": float(evaluate_probabilities(list(np.array(CLASSES)[yv]), pr, CLASSES,
                                                                  n_boot=0)["macro_auc"])}
        print(json.dumps(row), flush=True)
        if log is not None:
            log.append(row)
    return tail, models


def scores(y, probs, groups, sources, n_boot=1000):
    m = evaluate_probabilities(list(np.array(CLASSES)[y]), probs, CLASSES, groups=list(groups), sources=list(sources),
                               n_boot=n_boot)
    out = {k: [round(m[k], 3)] + [round(x, 3) for x in m["ci95"][k]] for k in KEYS} if n_boot else {
        k: round(m[k], 3) for k in KEYS}
    out["per_source_accuracy"] = {s: round(v["accuracy"], 3) for s, v in m["per_source"].items()}
    return out


def eval_all(net, tail, models, P, M, y, g, src, n_boot=1000) -> dict:
    tail_f = tail_features(Tail(net), P[:, :2], M[:, :2]).mean(1)
    z = (tail_f - tail.mean.numpy()) / tail.std.numpy()
    res = {name: scores(y, mdl.predict_proba(z), g, src, n_boot) for name, mdl in models.items()}
    res["tail_ft"] = scores(y, predict_clean(tail, P, M), g, src, n_boot)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--lr-head", type=float, default=1e-3)
    ap.add_argument("--l2sp", type=float, default=0.0)
    ap.add_argument("--smooth", type=float, default=0.1)
    ap.add_argument("--C", type=float, default=0.01)
    ap.add_argument("--init", choices=["clean", "aug"], default="aug")
    ap.add_argument("--eval", choices=["val", "test"], default="val")
    ap.add_argument("--cv", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save-model", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    cache_file = a.out.parent / f"tail_cache_v{a.views}_s{a.seed}.npz"
    audit = audit_folder(a.data)
    rows = audit.distinct_files()
    net = StagingNet("tf_efficientnet_lite0", feature_stages=(1, 2, 3)).eval()
    if cache_file.is_file():
        d = np.load(cache_file)
        P, M = d["P"], d["M"]
    else:
        pre = UltrasoundPreprocess(PreprocessConfig(img_size=224, fan_mask=False, fan_crop=False))
        images = [pre.geometry(read_image(f"{a.data}/{r['path']}").array) for r in rows]
        P, M = cache(net, images, a.views, a.seed)
        np.savez(cache_file, P=P, M=M)
    print(f"cache ready {P.shape} {M.shape} {time.time() - t0:.0f}s", flush=True)
    y = np.array([CLASSES.index(r["label"]) for r in rows])
    g = np.array([r["cluster"] for r in rows])
    src = np.array([r["source"] for r in rows])
    path_idx = {r["path"]: i for i, r in enumerate(rows)}
    result: dict = {"args": {k: str(v) for k, v in vars(a).items()}}
    if a.cv:
        strata = np.array([f"{yy}|{s}" for yy, s in zip(y, src, strict=True)])
        names = ("probe_clean", "probe_aug", "probe_aug_tta_views", "tail_ft")
        probs = {k: np.zeros((len(y), 5)) for k in names}
        for f, (tr, te) in enumerate(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(y, strata, g)):
            tail, models = fit_recipe(net, P[tr], M[tr], y[tr], a)
            zf = (tail_features(Tail(net), P[te, :2], M[te, :2]).mean(1) - tail.mean.numpy()) / tail.std.numpy()
            for k, mdl in models.items():
                probs[k][te] = mdl.predict_proba(zf)
            # test-time augmentation: mean probability over all cached views (clean, flip, augmented)
            fv = tail_features(Tail(net), P[te], M[te])
            zv = (fv - tail.mean.numpy()) / tail.std.numpy()
            probs["probe_aug_tta_views"][te] = np.mean(
                [models["probe_aug"].predict_proba(zv[:, v]) for v in range(zv.shape[1])], axis=0)
            if a.epochs > 0:
                probs["tail_ft"][te] = predict_clean(tail, P[te], M[te])
            else:
                probs.pop("tail_ft", None)
            print(f"fold {f} done {time.time() - t0:.0f}s", flush=True)
        result["cv5"] = {k: scores(y, p, g, src, 300) for k, p in probs.items() if k in probs}
    else:
        sub: dict[str, list[int]] = {"train": [], "val": [], "test": []}
        with a.split.open() as fh:
            for r in csv.DictReader(fh):
                i = path_idx.get(r["path"])
                if i is not None and r["split"] in sub and i not in sub[r["split"]]:
                    sub[r["split"]].append(i)
        tr = np.array(sub["train"] + (sub["val"] if a.eval == "test" else []))
        te = np.array(sub[a.eval])
        log: list = []
        va = np.array(sub["val"])
        tail, models = fit_recipe(net, P[tr], M[tr], y[tr], a,
                                  val=(P[va], M[va], y[va]) if a.eval == "val" else None, log=log)
        result[a.eval] = eval_all(net, tail, models, P[te], M[te], y[te], g[te], src[te])
        result["log"] = log
        if a.save_model:
            torch.save(tail.state_dict(), a.out / "tail.pt")
    result["seconds"] = round(time.time() - t0, 1)
    print(json.dumps({k: v for k, v in result.items() if k != "log"}, indent=1))
    (a.out / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
