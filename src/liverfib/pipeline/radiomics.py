"""Radiomics workflow: extract features, train classical models with nested grouped CV, evaluate."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError, LiverfibError
from liverfib.pipeline._common import progress_bar

__all__ = ["run_radiomics_extract", "run_radiomics_train", "run_radiomics_evaluate"]


# --------------------------------------------------------------------------------------- extract
def _expand(paths: Sequence[Path], what: str) -> list[Path]:
    from liverfib.io import list_images

    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir() and not _is_dicom_series(p):
            out.extend(list_images(p))
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"{p}: {what} not found")
    if not out:
        raise InputError(f"no {what} found in {[str(p) for p in paths]}")
    return out


def _is_dicom_series(folder: Path) -> bool:
    from liverfib.io import sniff_kind

    files = [f for f in sorted(folder.iterdir())[:5] if f.is_file()]
    return bool(files) and all(sniff_kind(f) == "dicom" for f in files)


def _distinct(paths: list[Path]) -> tuple[list[Path], list[str], list[int]]:
    """First path per byte-identical content, its sha256 and the number of copies."""
    from liverfib.dataset.fingerprint import file_sha256
    from liverfib.io import resolve_file

    first: dict[str, Path] = {}
    copies: dict[str, int] = {}
    for p in paths:
        sha = file_sha256(resolve_file(p))
        first.setdefault(sha, p)
        copies[sha] = copies.get(sha, 0) + 1
    shas = list(first)
    return [first[s] for s in shas], shas, [copies[s] for s in shas]


def run_radiomics_extract(
    images: Sequence[Path],
    out: Path,
    *,
    masks: Sequence[Path] | None = None,
    roi: str | None = None,
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    keep_copies: bool = False,
    robustness_images: int = 0,
    strict: bool = False,
) -> tuple[dict[str, Any], str]:
    """Extract radiomics features of every image into ``out`` (Parquet) + ``<out>.yaml`` settings.

    With ``robustness_images`` > 0, that many images (evenly spaced) are re-extracted under mask
    erosion/dilation and noise and the per-feature ICC(2,1) goes to ``<out>.robustness.json``,
    which ``run_radiomics_train`` uses to drop unstable features.

    Either ``masks`` (one per image, same order; folders are listed sorted) or ``roi`` (``fan`` or
    ``liver``). With an automatic ROI, byte-identical copies are extracted once (``keep_copies``
    keeps them all).
    """
    import yaml

    from liverfib.radiomics.config import load_config, save_config
    from liverfib.radiomics.extract import ROI_SOURCES, ExtractionJob, extract_many
    from liverfib.radiomics.table import write_feature_table

    if (masks is None) == (roi is None):
        raise ConfigError(f"pass exactly one of --masks PATHS or --roi {{{','.join(ROI_SOURCES)}}}")
    if roi is not None and roi not in ROI_SOURCES:
        raise ConfigError(f"Unknown --roi '{roi}'. Valid choices: {', '.join(ROI_SOURCES)}")
    if Path(out).suffix != ".parquet":
        raise ConfigError(f"--out must end in .parquet, got {out}")
    config = load_config(config_path, overrides)
    image_paths = _expand(images, "images")
    shas: list[str] | None = None
    n_copies: list[int] | None = None
    if masks is not None:
        mask_paths = _expand(masks, "masks")
        if len(mask_paths) != len(image_paths):
            raise InputError(
                f"got {len(image_paths)} images but {len(mask_paths)} masks; pass one mask per image "
                "(paired in sorted order)"
            )
        jobs = [ExtractionJob(i, mask_path=m) for i, m in zip(image_paths, mask_paths, strict=True)]
    else:
        if not keep_copies:
            image_paths, shas, n_copies = _distinct(image_paths)
        jobs = [ExtractionJob(i, roi=roi) for i in image_paths]
    t0 = time.perf_counter()
    errors: list[dict[str, Any]] = []
    rows = extract_many(jobs, config, progress=progress_bar("radiomics", "img"), errors=None if strict else errors)
    seconds = time.perf_counter() - t0
    if not rows:
        raise InputError(f"no image could be extracted ({len(errors)} refused): "
                         + "; ".join(e["error"] for e in errors[:3]))
    if errors and shas is not None and n_copies is not None:
        bad = {e["index"] for e in errors}
        shas = [h for i, h in enumerate(shas) if i not in bad]
        n_copies = [c for i, c in enumerate(n_copies) if i not in bad]
        jobs = [j for i, j in enumerate(jobs) if i not in bad]
    if shas is not None and n_copies is not None:
        rows = [
            {"path": r["path"], "sha256": s, "n_copies": c, **{k: v for k, v in r.items() if k != "path"}}
            for r, s, c in zip(rows, shas, n_copies, strict=True)
        ]
    config_yaml = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    write_feature_table(rows, out, config_yaml)
    save_config(config, Path(out).with_suffix(".yaml"))
    icc_file = None
    if robustness_images > 0:
        icc_file = write_robustness(
            jobs, config, robustness_images, Path(out).with_suffix(".robustness.json")
        )
    n_feat = len(rows[0]) - len(
        [k for k in rows[0] if k in ("path", "sha256", "n_copies", "roi", "roi_pixels")]
    )
    summary = {
        "out": str(out),
        "config": str(Path(out).with_suffix(".yaml")),
        "n_images": len(rows),
        "n_features": n_feat,
        "seconds": round(seconds, 2),
        "images_per_second": round(len(rows) / seconds, 3) if seconds > 0 else None,
        "workers": config.workers,
        "roi": roi if roi is not None else "masks",
        "robustness_file": str(icc_file) if icc_file else None,
        "n_skipped": len(errors),
        "errors": [{"path": e["path"], "error": e["error"]} for e in errors],
    }
    text = (
        f"wrote {out}: {len(rows)} images x {n_feat} features "
        f"({summary['images_per_second']} images/s, {config.workers} process(es)); settings in {summary['config']}"
    )
    text += "".join(f"\nskipped: {e['error']}" for e in errors)
    if errors:
        text += f"\n{len(errors)} file(s) skipped, reasons above (--strict stops at the first)"
    return summary, text


def write_robustness(
    jobs: Sequence[Any], config: Any, n_images: int, out_json: Path, *, seed: int = 0
) -> Path:
    """ICC(2,1) per feature over ``n_images`` evenly spaced jobs -> ``out_json`` (atomic)."""
    import numpy as np

    from liverfib.radiomics.extract import _load_job
    from liverfib.radiomics.robustness import PERTURBATIONS, feature_robustness
    from liverfib.report.jsonio import write_json

    if n_images < 2:
        raise ConfigError(f"--robustness needs at least 2 images, got {n_images}")
    pick = np.unique(np.linspace(0, len(jobs) - 1, min(n_images, len(jobs))).round().astype(int))
    pairs = [_load_job(jobs[i]) for i in pick]
    icc = feature_robustness(pairs, config, seed=seed)
    write_json(
        {
            "method": "ICC(2,1) over perturbations",
            "perturbations": list(PERTURBATIONS),
            "radius_px": 2,
            "noise_fraction": 0.1,
            "images": [str(jobs[i].image_path) for i in pick],
            "icc": icc,
        },
        out_json,
    )
    return out_json


# ----------------------------------------------------------------------------------------- train
def _spread(n_rows: int, n: int) -> list[int]:
    """Up to ``n`` row indices spread evenly over ``range(n_rows)`` (first and last included)."""
    import numpy as np

    if n <= 0 or n_rows == 0:
        return []
    return [int(i) for i in np.unique(np.linspace(0, n_rows - 1, min(n, n_rows)).round())]


_CLASSES_ORDER = ("F0", "F1", "F2", "F3", "F4")


def _key(path: str, root: Path | None) -> str:
    import os

    p = Path(path)
    if root is not None and not p.is_absolute():
        p = root / p
    return os.path.normpath(os.path.abspath(p))


def _join_split(
    table: Any, split_csv: Path, data_dir: Path | None, subsets: set[str] | None = None
) -> tuple[Any, list[dict[str, str]]]:
    """Rows of ``table`` that appear in the split (by path), with their split rows, in table order."""
    from liverfib.dataset.split import read_split_csv

    rows = read_split_csv(split_csv)
    by_key = {_key(r["path"], data_dir): r for r in rows if subsets is None or r["split"] in subsets}
    idx, matched = [], []
    for i, p in enumerate(table.paths):
        r = by_key.get(_key(p, None))
        if r is not None:
            idx.append(i)
            matched.append(r)
    if not idx:
        raise InputError(
            f"none of the {len(table.paths)} feature rows match a path in {split_csv}"
            + (f" (subsets {sorted(subsets)})" if subsets else "")
            + "; pass --data DATASET_ROOT so the split's relative paths resolve "
            f"(e.g. feature path {table.paths[0]!r} vs split path {rows[0]['path']!r})"
        )
    return table.select(idx), matched


def _classes_of(labels: list[str]) -> list[str]:
    present = sorted(set(labels), key=lambda c: (_CLASSES_ORDER.index(c) if c in _CLASSES_ORDER else 99, c))
    return present


def _robust_names(features: Path, names: list[str], threshold: float) -> tuple[list[str], str | None]:
    """Names passing the ICC filter if ``<features>.robustness.json`` exists, else all."""
    import json

    icc_path = Path(features).with_suffix(".robustness.json")
    if not icc_path.is_file():
        return names, None
    icc = json.loads(icc_path.read_text())["icc"]
    keep = [n for n in names if icc.get(n, 0.0) >= threshold]
    if not keep:
        raise ConfigError(f"{icc_path}: no feature reaches ICC >= {threshold}; lower icc_threshold")
    return keep, str(icc_path)


def _columns(table: Any, names: list[str]) -> Any:
    index = {n: j for j, n in enumerate(table.names)}
    return table.values[:, [index[n] for n in names]]


def _prediction_rows(
    paths: list[str], split_rows: list[dict[str, str]], probs: Any, classes: list[str]
) -> list[dict]:
    out = []
    for p, r, pr in zip(paths, split_rows, probs, strict=True):
        row = {
            "path": r["path"],
            "label": r["label"],
            "group": r.get("group") or r.get("cluster") or p,
            "source": r.get("source") or "?",
        }
        row.update({f"prob_{c}": f"{v:.6f}" for c, v in zip(classes, pr, strict=True)})
        out.append(row)
    return out


def _metrics(
    split_rows: list[dict[str, str]], probs: Any, classes: list[str], n_boot: int, seed: int
) -> dict:
    from liverfib.evaluation.metrics import evaluate_probabilities

    groups = [r.get("group") or r.get("cluster") or r["path"] for r in split_rows]
    sources = [r.get("source") or "?" for r in split_rows]
    return evaluate_probabilities(
        [r["label"] for r in split_rows],
        probs,
        classes,
        groups=groups,
        sources=sources,
        n_boot=n_boot,
        seed=seed,
    )


def _fmt(
    m: dict[str, Any], keys: Sequence[str] = ("accuracy", "macro_auc", "auc_ge_f2", "kappa_quadratic")
) -> str:
    parts = []
    for k in keys:
        v, ci = m.get(k), (m.get("ci95") or {}).get(k)
        parts.append(
            f"{k} {v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "") if v is not None else f"{k} n/a"
        )
    return ", ".join(parts)


def run_deep_features(
    images: Sequence[Path],
    out: Path,
    *,
    backbone: str = "tf_efficientnet_lite0",
    img_size: int = 224,
    stages: Sequence[int] = (1, 2, 3),
    fan: bool = True,
    keep_copies: bool = False,
    batch_size: int = 16,
    strict: bool = False,
) -> tuple[dict[str, Any], str]:
    """Deep features for ``radiomics train --fuse``: the ImageNet backbone's pooled features (final
    + ``stages``) of each distinct image and its horizontal flip, averaged, one Parquet row per image.

    The backbone is ImageNet-pretrained and never saw a fibrosis label, so stacking these features
    under the nested grouped CV of ``radiomics train`` leaks nothing (a fine-tuned checkpoint would:
    it was fit on some of the rows being scored). Unreadable files are skipped and listed.
    """
    import numpy as np
    import torch

    from liverfib.io import read_image
    from liverfib.io.outputs import check_output_file
    from liverfib.models.staging import StagingNet
    from liverfib.preprocess.transforms import PreprocessConfig, UltrasoundPreprocess
    from liverfib.progress import Progress
    from liverfib.radiomics.table import write_feature_table

    check_output_file(Path(out), (".parquet",))
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    pre = UltrasoundPreprocess(PreprocessConfig(img_size=img_size, fan_mask=fan, fan_crop=fan))
    paths = _expand(images, "images")
    shas: list[str] | None = None
    n_copies: list[int] | None = None
    if not keep_copies:
        paths, shas, n_copies = _distinct(paths)
    net = StagingNet(backbone, feature_stages=list(stages)).eval()
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    batch: list[tuple[int, np.ndarray]] = []
    t0 = time.perf_counter()

    def flush() -> None:
        x = torch.from_numpy(np.stack([a for _, a in batch]))
        with torch.inference_mode():
            f = net.pooled_features(torch.cat([x, x.flip(-1)]))
        feats = (0.5 * (f[: len(batch)] + f[len(batch):])).numpy()
        for (i, _), v in zip(batch, feats, strict=True):
            row: dict[str, Any] = {"path": str(paths[i])}
            if shas is not None and n_copies is not None:
                row.update(sha256=shas[i], n_copies=n_copies[i])
            row.update({f"dl_{backbone}_{j:04d}": float(x_) for j, x_ in enumerate(v)})
            rows.append(row)
        batch.clear()

    with Progress(len(paths), "deep-features", "img") as bar:
        for i, p in enumerate(paths):
            try:
                image = read_image(p)
                if image.ndim != 2:
                    raise InputError(f"{p}: expected a 2D ultrasound image, got shape {image.shape}")
            except LiverfibError as exc:
                if strict:
                    raise
                errors.append({"path": str(p), "error": str(exc)})
                bar.update()
                continue
            batch.append((i, pre(image.array)))
            if len(batch) == batch_size:
                flush()
            bar.update()
        if batch:
            flush()
    if not rows:
        raise InputError("no image could be read: " + "; ".join(e["error"] for e in errors[:3]))
    import yaml

    settings = {"kind": "deep-features", "backbone": backbone, "weights": "ImageNet (no fibrosis labels)",
                "img_size": img_size, "stages": list(stages), "fan_crop": fan, "flip_average": True}
    write_feature_table(rows, out, yaml.safe_dump(settings, sort_keys=False))
    seconds = time.perf_counter() - t0
    n_feat = len([k for k in rows[0] if k.startswith("dl_")])
    summary = {"out": str(out), "n_images": len(rows), "n_features": n_feat, "backbone": backbone,
               "seconds": round(seconds, 2), "n_skipped": len(errors), "errors": errors}
    lines = [f"wrote {n_feat} deep features ({backbone}, ImageNet weights) of {len(rows)} distinct images to {out}"]
    lines += [f"skipped: {e['error']}" for e in errors]
    lines.append(f"use: liverfib radiomics train ... --split FOLDS.csv --fuse {out}")
    return summary, "\n".join(lines)


def run_radiomics_train(
    features: Path,
    split_csv: Path,
    out_dir: Path,
    *,
    data_dir: Path | None = None,
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    fuse: Sequence[Path] = (),
) -> tuple[dict[str, Any], str]:
    """Train a radiomics model on a feature table and a grouped split.

    With a K-fold split (``fold0..``): nested grouped CV gives out-of-fold predictions and metrics
    (tuning inside each training part), then the final model is tuned and fit on all rows. With a
    train/val/test split: tuned and fit on train+val, measured on test. ``fuse`` tables (other
    features keyed by path, e.g. deep-learning features) are stacked with the radiomics model,
    nested so the stacker never sees its evaluation fold (K-fold splits only).
    """
    import joblib
    import numpy as np

    from liverfib.pipeline._common import write_rows
    from liverfib.radiomics.config import load_train_config, save_config
    from liverfib.radiomics.models import encode_folds, linear_learner, nested_cv, radiomics_learner
    from liverfib.radiomics.table import read_feature_table
    from liverfib.report.jsonio import write_json

    cfg = load_train_config(config_path, overrides)
    table = read_feature_table(features)
    table, split_rows = _join_split(table, split_csv, data_dir)
    splits = {r["split"] for r in split_rows}
    kfold = all(s.startswith("fold") for s in splits)
    if not kfold and "test" not in splits:
        raise InputError(f"{split_csv}: expected fold0..foldK or train/val/test rows, got {sorted(splits)}")
    if fuse and not kfold:
        raise ConfigError("--fuse needs a K-fold split (liverfib split --folds 5) for leakage-free stacking")
    names, icc_file = _robust_names(features, table.names, cfg.icc_threshold)
    X = _columns(table, names)
    labels = [r["label"] for r in split_rows]
    classes = _classes_of(labels)
    y = np.array([classes.index(lab) for lab in labels])
    groups = np.array([r.get("group") or r.get("cluster") or r["path"] for r in split_rows])
    learner = radiomics_learner(
        cfg.model,
        corr_threshold=cfg.corr_threshold,
        lasso_c=cfg.lasso_c,
        inner_folds=cfg.inner_folds,
        seed=cfg.seed,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir / "train_config.yaml")
    summary: dict[str, Any] = {
        "out": str(out_dir),
        "model": cfg.model,
        "n_images": len(y),
        "n_features_extracted": len(table.names),
        "n_features_robust": len(names),
        "robustness_file": icc_file,
        "classes": classes,
    }
    robust_note = (
        f"{len(names)}/{len(table.names)} features pass ICC >= {cfg.icc_threshold}"
        if icc_file
        else f"{len(names)} features (no robustness file: none dropped)"
    )
    lines = [f"radiomics {cfg.model}: {len(y)} images, {robust_note}"]
    if kfold:
        folds = encode_folds([r["split"] for r in split_rows])
        if fuse:
            from liverfib.radiomics.fusion import nested_stacking

            blocks = {"radiomics": (X, learner)}
            for f in fuse:
                ftab, _ = _join_split(read_feature_table(f), split_csv, data_dir)
                index = {_key(p, None): i for i, p in enumerate(ftab.paths)}
                missing = [p for p in table.paths if _key(p, None) not in index]
                if missing:
                    raise InputError(
                        f"{f}: no row for {len(missing)} images of {features}, e.g. {missing[0]}"
                    )
                rows_f = [index[_key(p, None)] for p in table.paths]
                blocks[Path(f).stem] = (
                    ftab.values[rows_f],
                    linear_learner(cfg.fuse_c_grid, inner_folds=cfg.fuse_inner_folds, seed=cfg.seed),
                )
            res = nested_stacking(
                blocks, y, groups, folds, len(classes), stacker_c=cfg.stacker_c, seed=cfg.seed
            )
            all_probs = {**res["base"], "fusion": res["fusion"]}
            params = res["params"]["radiomics"]
        else:
            res = nested_cv(learner, X, y, groups, folds, len(classes), progress=progress_bar("folds"))
            all_probs = {"radiomics": res["probs"]}
            params = res["params"]
        metrics = {}
        for name, probs in all_probs.items():
            metrics[name] = _metrics(split_rows, probs, classes, cfg.n_boot, cfg.seed)
            rows = _prediction_rows(table.paths, split_rows, probs, classes)
            cols = ["path", "label", *[f"prob_{c}" for c in classes], "group", "source"]
            write_rows(rows, out_dir / f"oof_{name}.csv", cols)
            lines.append(f"{name:12s} out-of-fold: {_fmt(metrics[name])}")
        summary["evaluation"] = "nested grouped CV, out-of-fold"
        summary["fold_params"] = params
        final_params = learner.tune(X, y, groups)
        fit_paths = table.paths
    else:
        fit_rows = np.array([r["split"] in ("train", "val") for r in split_rows])
        test_rows = np.array([r["split"] == "test" for r in split_rows])
        final_params = learner.tune(X[fit_rows], y[fit_rows], groups[fit_rows])
        est = learner.fit(X[fit_rows], y[fit_rows], final_params)
        test_idx = np.flatnonzero(test_rows)
        from liverfib.radiomics.models import _proba_full

        probs = _proba_full(est, X[test_idx], len(classes))
        sr = [split_rows[i] for i in test_idx]
        metrics = {"radiomics": _metrics(sr, probs, classes, cfg.n_boot, cfg.seed)}
        write_rows(
            _prediction_rows([table.paths[i] for i in test_idx], sr, probs, classes),
            out_dir / "test_radiomics.csv",
            ["path", "label", *[f"prob_{c}" for c in classes], "group", "source"],
        )
        summary["evaluation"] = "fit on train+val, measured on test"
        lines.append(f"radiomics    test: {_fmt(metrics['radiomics'])}")
        fit_rows_idx = np.flatnonzero(fit_rows)
        X, y, groups = X[fit_rows_idx], y[fit_rows_idx], groups[fit_rows_idx]
        fit_paths = [table.paths[i] for i in fit_rows_idx]
    final = learner.fit(X, y, final_params)
    from liverfib.radiomics.explain import selected_feature_names

    selected = selected_feature_names(final, names)
    bundle = {
        "pipeline": final,
        "features": names,
        "classes": classes,
        "params": final_params,
        "train_config": cfg.model_dump(mode="json"),
        "extraction_config": table.config_yaml,
        # the rows the final model was fit on: `radiomics evaluate` refuses to score them as a test
        "train_paths": sorted(_key(p, None) for p in fit_paths),
        "train_split": {"file": str(split_csv), "kfold": kfold},
    }
    from liverfib.io.atomic import atomic_write

    with atomic_write(out_dir / "model.joblib", mode="wb") as fh:
        joblib.dump(bundle, fh)
    summary.update({"final_params": final_params, "selected_features": selected, "metrics": metrics})
    write_json(summary, out_dir / "metrics.json")
    if cfg.shap_images > 0:
        from liverfib.radiomics.explain import save_shap_plots, shap_values_ge_f2

        rows = _spread(len(y), cfg.shap_images)  # evenly over the (path-sorted) table, all stages
        expl = shap_values_ge_f2(
            final, X[rows], names, classes, background=cfg.shap_background, seed=cfg.seed
        )
        plots = save_shap_plots(expl, out_dir, [fit_paths[i] for i in rows])
        summary["shap_plots"] = [str(p) for p in plots]
    lines.append(
        f"final model: params {final_params}, {len(selected)} selected features -> {out_dir / 'model.joblib'}"
    )
    return summary, "\n".join(lines)


# -------------------------------------------------------------------------------------- evaluate
def run_radiomics_evaluate(
    model: Path,
    features: Path,
    split_csv: Path,
    *,
    data_dir: Path | None = None,
    subset: str | None = "test",
    out_dir: Path | None = None,
    n_boot: int = 1000,
    explain: int = 1,
    allow_overlap: bool = False,
) -> tuple[dict[str, Any], str]:
    """Apply a trained radiomics model to the ``subset`` rows of a split; metrics with CIs.

    With ``out_dir``: predictions.csv, metrics.json and SHAP waterfalls of the first ``explain`` images.
    Rows the model was fit on are refused (a K-fold model is refit on every row: its honest figures
    are the out-of-fold ones of ``radiomics train``); ``allow_overlap`` scores them anyway, flagged.
    """
    import joblib

    from liverfib.pipeline._common import write_rows
    from liverfib.radiomics.models import _proba_full
    from liverfib.radiomics.table import read_feature_table
    from liverfib.report.jsonio import write_json

    model = Path(model)
    if not model.is_file():
        raise InputError(f"{model}: radiomics model not found; train one with 'liverfib radiomics train'")
    try:
        bundle = joblib.load(model)
    except Exception as exc:  # joblib/pickle raise many types on a corrupt file
        from liverfib.errors import ModelError

        raise ModelError(f"{model}: not a liverfib radiomics model ({type(exc).__name__})") from None
    table = read_feature_table(features)
    table, split_rows = _join_split(table, split_csv, data_dir, {subset} if subset else None)
    missing = [n for n in bundle["features"] if n not in table.names]
    if missing:
        raise InputError(
            f"{features}: lacks {len(missing)} features the model needs, e.g. {missing[0]}; extract with the model's settings"
        )
    overlap = _training_overlap(bundle, table.paths)
    if overlap and not allow_overlap:
        how = bundle.get("train_split", {})
        refit = ""
        if how.get("kfold"):
            refit = (f" (it was refit on every row of the K-fold split {how.get('file')}; its honest figures "
                     "are the out-of-fold metrics of 'radiomics train')")
        raise InputError(
            f"{len(overlap)} of {len(table.paths)} rows of subset {subset!r} were used to fit {model}{refit}; "
            f"scoring them would overstate accuracy. Evaluate rows the model never saw, or pass --allow-overlap "
            f"to score anyway (flagged in the output). First: {overlap[0]}"
        )
    X = _columns(table, bundle["features"])
    classes = bundle["classes"]
    probs = _proba_full(bundle["pipeline"], X, len(classes))
    unknown = sorted({r["label"] for r in split_rows} - set(classes))
    if unknown:
        raise InputError(f"{split_csv}: labels {unknown} unknown to the model (classes {classes})")
    metrics = _metrics(split_rows, probs, classes, n_boot, 0)
    summary: dict[str, Any] = {"model": str(model), "subset": subset, "metrics": metrics,
                               "n_rows_seen_in_training": len(overlap) if "train_paths" in bundle else None}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        cols = ["path", "label", *[f"prob_{c}" for c in classes], "group", "source"]
        write_rows(
            _prediction_rows(table.paths, split_rows, probs, classes), out_dir / "predictions.csv", cols
        )
        write_json(summary, out_dir / "metrics.json")
        if explain > 0:
            from liverfib.radiomics.explain import save_shap_plots, shap_values_ge_f2

            first = list(range(min(explain, len(X))))  # waterfalls: the first images of the subset
            rows = first + [i for i in _spread(len(X), 100) if i >= len(first)]  # Kernel SHAP cost ~ rows
            expl = shap_values_ge_f2(bundle["pipeline"], X[rows], bundle["features"], classes, background=20)
            plots = save_shap_plots(expl, out_dir, [table.paths[i] for i in rows], waterfalls=first)
            summary["shap_plots"] = [str(p) for p in plots]
    text = f"radiomics {subset or 'all'} (n={metrics['n']}): {_fmt(metrics)}"
    if overlap:
        text += (f"\nWARNING: {len(overlap)} of these rows were used to fit the model; these figures are "
                 "optimistic (--allow-overlap)")
    elif "train_paths" not in bundle:
        text += "\nnote: this model does not record its training rows (made before 0.1.0); overlap not checked"
    if out_dir is not None:
        text += f"\nwrote predictions.csv and metrics.json to {out_dir}"
    return summary, text


def _training_overlap(bundle: dict[str, Any], paths: list[str]) -> list[str]:
    """Paths of ``paths`` (feature-table rows) that the model in ``bundle`` was fit on."""
    trained = set(bundle.get("train_paths") or ())
    return [p for p in paths if _key(p, None) in trained]
