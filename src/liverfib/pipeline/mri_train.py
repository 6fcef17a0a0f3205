"""MRI training workflows: multi-phase (LiQA) and per-slice (CirrMRI600+) staging, 2D liver segmenter.

Each ``run_*`` returns ``(json_summary, human_text)`` like the rest of :mod:`liverfib.pipeline`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from liverfib.errors import ConfigError, InputError
from liverfib.pipeline._mri_common import (
    CIRRMRI_SPLITS,
    LIQA_CLASSES,
    LazySegmenter,
    case_progress,
    cirrmri_slices,
    liqa_slices,
    prediction_columns,
    prob_cells,
)

__all__ = ["run_mri_train", "run_train_seg_mri"]


def run_mri_train(
    data: Path,
    out: Path,
    *,
    layout: str = "auto",
    sequence: str | None = None,
    labels_csv: Path | None = None,
    fusion: str = "consensus",
    encoder: str = "small_cnn",
    steps: int = 250,
    cam_weight: float = 0.5,
    val_fraction: float = 0.25,
    n_slices: int = 16,
    crop_size: int | None = None,
    seed: int = 0,
    threads: int | None = 1,
    n_boot: int = 1000,
) -> tuple[dict, str]:
    """``train-mri``: the LiQA multi-phase staging net (S1..S4) or the CirrMRI600+ per-slice net (3 grades).

    ``layout`` ``auto`` reads it from ``data`` (``Vendor_*`` -> liqa, ``Cirrhosis_T*_3D`` -> cirrmri).
    LiQA: a ``val_fraction`` of the subjects (NNNN ids) is held out; AUC S4 vs S1-S3, AUC S2-S4 vs S1
    and accuracy with subject-bootstrap CIs. CirrMRI600+: ``sequence`` T1 or T2 and ``labels_csv``
    are required; train_ scans train, valid_ scans select the checkpoint, test_ scans are scored per
    slice and per patient (mean of the slice probabilities), CIs from a bootstrap over patients.
    Writes the bundle ``model/``, ``metrics.json`` and predictions CSVs (``evaluate --predictions`` format).
    """
    from liverfib.mri.layouts import detect_layout

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    data = Path(data)
    if not data.is_dir():
        raise InputError(f"{data}: dataset folder not found")
    if layout == "auto":
        found = detect_layout(data)
        if found is None:
            names = sorted(d.name for d in data.iterdir())[:8]
            raise InputError(f"{data}: expected a LiQA root (Vendor_* folders) or a CirrMRI600+ root "
                             f"(Cirrhosis_T1_3D/, Cirrhosis_T2_3D/), found {names}")
        layout = found
    if layout == "cirrmri":
        if sequence not in ("T1", "T2"):
            raise ConfigError(f"--layout cirrmri needs --sequence T1 or T2, got {sequence!r}")
        if labels_csv is None:
            raise ConfigError("--layout cirrmri needs --labels CSV (id column + radiological evaluation 1-3)")
        return _train_cirrmri(data, Path(out), sequence=sequence, labels_csv=labels_csv, encoder=encoder, steps=steps,
                              n_slices=n_slices, crop_size=crop_size or 64, seed=seed, n_boot=n_boot)
    if layout != "liqa":
        raise ConfigError(f"--layout must be auto, liqa or cirrmri, got {layout!r}")
    if sequence is not None or labels_csv is not None:
        raise ConfigError("--sequence and --labels are for --layout cirrmri; LiQA stages come from the folder names")
    return _train_liqa(data, Path(out), fusion=fusion, encoder=encoder, steps=steps, cam_weight=cam_weight,
                       val_fraction=val_fraction, crop_size=crop_size, seed=seed, n_boot=n_boot)


def _is_synthetic(data: Path) -> bool:
    """The phantom writers put SYNTHETIC.txt at the root of every generated dataset."""
    return (data / "SYNTHETIC.txt").is_file()


def _data_note(data: Path) -> str:
    return f"{data} (SYNTHETIC)" if _is_synthetic(data) else str(data)


def _train_liqa(data: Path, out: Path, *, fusion: str, encoder: str, steps: int, cam_weight: float,
                val_fraction: float, crop_size: int | None, seed: int, n_boot: int) -> tuple[dict, str]:
    import numpy as np

    from liverfib.evaluation.metrics import evaluate_probabilities
    from liverfib.models.bundle import save_bundle
    from liverfib.mri.layouts import list_liqa_exams
    from liverfib.mri.staging import StagingConfig, cumulative_to_stage_probs, staging_bundle_fields
    from liverfib.mri.staging_train import predict_cumulative, prepare_exam, stack_crops, train_staging
    from liverfib.pipeline._common import write_rows
    from liverfib.report.jsonio import write_json

    if not 0 < val_fraction < 1:
        raise ConfigError(f"--val must be in (0, 1), got {val_fraction}")
    try:
        cfg = StagingConfig(fusion=fusion, encoder=encoder, **({"crop_size": crop_size} if crop_size else {}))  # type: ignore[arg-type]
    except Exception as exc:  # pydantic ValidationError
        raise ConfigError(f"invalid staging option: {str(exc).splitlines()[-2].strip()}") from None
    exams = [e for e in list_liqa_exams(data) if e.stage is not None]
    if len(exams) < 8:
        raise InputError(f"{data}: {len(exams)} labelled exams; need at least 8 to train and validate")
    subjects = sorted({e.case_id.split("-")[0] for e in exams})
    rng = np.random.default_rng(seed)
    val_subjects = set(rng.choice(subjects, size=max(2, round(val_fraction * len(subjects))), replace=False).tolist())
    seg = LazySegmenter("default")
    crops = [prepare_exam(e, cfg, seg_model=seg)[0] for e in case_progress(exams, "prepare")]
    x, present, liver = stack_crops(crops)
    stages = np.array([e.stage for e in exams])
    is_val = np.array([e.case_id.split("-")[0] in val_subjects for e in exams])
    net, log = train_staging(x[~is_val], present[~is_val], liver[~is_val], stages[~is_val], cfg, steps=steps,
                             cam_weight=cam_weight, seed=seed)
    cum, _ = predict_cumulative(net, x[is_val], present[is_val])
    probs = cumulative_to_stage_probs(cum)
    val_exams = [e for e, v in zip(exams, is_val, strict=True) if v]
    ids = [e.case_id.split("-")[0] for e in val_exams]
    labels = [f"S{s}" for s in stages[is_val]]
    metrics = evaluate_probabilities(labels, probs, list(LIQA_CLASSES), groups=ids,
                                     sources=[str(e.vendor) for e in val_exams], n_boot=n_boot, seed=seed)
    result = {
        "layout": "liqa", "data": str(data), "n_train": int((~is_val).sum()), "n_val": int(is_val.sum()),
        "auc_s4_vs_s1_s3": metrics["auc_f4"], "auc_s4_ci95": metrics["ci95"]["auc_f4"],
        "auc_s2_s4_vs_s1": metrics["auc_ge_f2"], "auc_s2_s4_ci95": metrics["ci95"]["auc_ge_f2"],
        "stage_accuracy": metrics["accuracy"], "stage_accuracy_ci95": metrics["ci95"]["accuracy"],
        "split": "validation subjects (grouped by NNNN id)", "steps": len(log), "config": cfg.model_dump(mode="json"),
    }
    out.mkdir(parents=True, exist_ok=True)
    rows = [{"path": str(e.root), "label": lab, **prob_cells(LIQA_CLASSES, p),
             "group": g, "source": e.vendor} for e, lab, p, g in zip(val_exams, labels, probs, ids, strict=True)]
    write_rows(rows, out / "val_predictions.csv", prediction_columns(LIQA_CLASSES, []))
    write_json({**result, "metrics": metrics}, out / "metrics.json")
    save_bundle(out / "model", net, **staging_bundle_fields(
        net, data=_data_note(data), synthetic=_is_synthetic(data), layout="liqa", classes=list(LIQA_CLASSES),
        heldout=result))
    text = (f"trained on {result['n_train']} exams; validation ({result['n_val']}): AUC S4 {result['auc_s4_vs_s1_s3']}, "
            f"AUC S2-S4 {result['auc_s2_s4_vs_s1']}, accuracy {result['stage_accuracy']} -> {out / 'model'}")
    return result, text


def _train_cirrmri(data: Path, out: Path, *, sequence: str, labels_csv: Path, encoder: str, steps: int,
                   n_slices: int, crop_size: int, seed: int, n_boot: int) -> tuple[dict, str]:
    from collections import Counter

    import numpy as np
    from pydantic import ValidationError

    from liverfib.evaluation.metrics import evaluate_probabilities
    from liverfib.models.bundle import save_bundle
    from liverfib.mri.layouts import list_cirrmri_exams
    from liverfib.mri.slice_staging import (
        SliceStagingConfig,
        average_by_group,
        predict_slice_probs,
        scan_slices,
        train_slice_staging,
    )
    from liverfib.mri.staging import staging_bundle_fields
    from liverfib.pipeline._common import write_rows
    from liverfib.report.jsonio import write_json

    try:
        cfg = SliceStagingConfig(sequence=sequence, encoder=encoder, n_slices=n_slices, crop_size=crop_size)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"invalid staging option {err['loc'][0]}: {err['msg']}") from None
    t0 = time.time()
    exams = [e for e in list_cirrmri_exams(data, labels_csv) if e.meta.get("sequence") == sequence]
    by_split = {s: [e for e in exams if e.split == s] for s in CIRRMRI_SPLITS}
    if not by_split["train"] or not by_split["valid"]:
        counts = {s: len(v) for s, v in by_split.items()}
        raise InputError(f"{data}: need {sequence} scans in train_images/ and valid_images/, found {counts}")
    seg = LazySegmenter("default")
    prepared: dict[str, dict[str, Any]] = {}
    for split, members in by_split.items():
        xs, ys, groups, rows_meta = [], [], [], []
        for e in case_progress(members, f"prepare {split}"):
            try:
                s = scan_slices(e, cfg, seg_model=seg)
            except InputError as exc:
                raise InputError(f"scan {e.case_id} ({split}): {exc}") from None
            xs.append(s.x)
            ys += [e.stage - 1] * len(s.x)  # type: ignore[operator]
            groups += [str(e.meta["subject"])] * len(s.x)
            rows_meta += [(e, int(k), s.mask_source) for k in s.slice_index]
        prepared[split] = {"x": np.concatenate(xs) if xs else np.zeros((0, 3, crop_size, crop_size), np.float16),
                           "y": np.array(ys, dtype=np.int64), "groups": groups, "meta": rows_meta}
    from liverfib.progress import Progress

    bar = Progress(steps, "train-mri", "step")

    def progress(step: int, message: str) -> None:
        bar.set(step, status=message)

    tr, va, te = prepared["train"], prepared["valid"], prepared["test"]
    net, log, best = train_slice_staging(tr["x"], tr["y"], cfg, x_val=va["x"], y_val=va["y"], steps=steps, seed=seed,
                                         progress=progress)
    bar.close()
    classes = list(cfg.classes)
    result: dict[str, Any] = {
        "layout": "cirrmri", "sequence": sequence, "data": str(data), "labels": str(labels_csv), "classes": classes,
        "n_scans": {s: len(v) for s, v in by_split.items()},
        "n_slices": {s: int(len(prepared[s]["y"])) for s in CIRRMRI_SPLITS},
        "train_grades": dict(Counter(classes[e.stage - 1] for e in by_split["train"])),  # type: ignore[operator]
        "mask_sources": dict(Counter(m[2] for s in CIRRMRI_SPLITS for m in prepared[s]["meta"])),
        "selected_step": int(best["step"]), "val_slice_accuracy": best["val_accuracy"],
        "steps": len(log), "config": cfg.model_dump(mode="json"),
        "units": {"slice": "one prediction per 2.5D liver slice; 95% CI from a bootstrap over patients",
                  "patient": "mean of the patient's slice probabilities; 95% CI from a bootstrap over patients"},
    }
    out.mkdir(parents=True, exist_ok=True)
    if len(te["y"]):
        p = predict_slice_probs(net, te["x"])
        y_names = [classes[i] for i in te["y"]]
        m_slice = evaluate_probabilities(y_names, p, classes, groups=te["groups"], n_boot=n_boot, seed=seed)
        keys, p_pat = average_by_group(p, te["groups"])
        label_of = dict(zip(te["groups"], y_names, strict=True))
        m_pat = evaluate_probabilities([label_of[k] for k in keys], p_pat, classes, groups=keys, n_boot=n_boot, seed=seed)
        result.update(
            test_slice_accuracy=m_slice["accuracy"], test_slice_accuracy_ci95=m_slice["ci95"]["accuracy"],
            test_patient_accuracy=m_pat["accuracy"], test_patient_accuracy_ci95=m_pat["ci95"]["accuracy"],
            test_slice_macro_auc=m_slice["macro_auc"], test_patient_macro_auc=m_pat["macro_auc"],
            test_patient_confusion_matrix=m_pat["confusion_matrix"],
            metrics_slice=m_slice, metrics_patient=m_pat,
        )
        cols = prediction_columns(classes, ["slice"])
        slice_rows = [{"path": f"{e.phase_paths[e.phases[0]]}#z{k}", "label": lab, "group": g, "source": sequence,
                       "slice": k, **prob_cells(classes, pk)}
                      for (e, k, _), lab, g, pk in zip(te["meta"], y_names, te["groups"], p, strict=True)]
        path_of = {str(e.meta["subject"]): str(e.phase_paths[e.phases[0]]) for e in by_split["test"]}
        patient_rows = [{"path": path_of[k], "label": label_of[k], "group": k, "source": sequence, "slice": "mean",
                         **prob_cells(classes, pk)}
                        for k, pk in zip(keys, p_pat, strict=True)]
        write_rows(slice_rows, out / "test_predictions_slices.csv", cols)
        write_rows(patient_rows, out / "test_predictions_patients.csv", cols)
    else:
        result.update(test_slice_accuracy=None, test_patient_accuracy=None, note="no test_images scans: no test metrics")
    result["seconds"] = round(time.time() - t0, 1)
    write_rows(log, out / "log.csv", ["step", "loss", "seconds", "val_accuracy", "val_log_loss"])
    write_json(result, out / "metrics.json")
    heldout = {k: v for k, v in result.items() if not k.startswith("metrics_")}
    save_bundle(out / "model", net, **staging_bundle_fields(
        net, data=_data_note(data), synthetic=_is_synthetic(data), layout="cirrmri", sequence=sequence,
        classes=classes, heldout=heldout))

    def fmt(key: str) -> str:
        v, ci = result.get(key), result.get(f"{key}_ci95")
        return "n/a" if v is None else f"{v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    text = (f"trained {len(log)} steps on {result['n_scans']['train']} {sequence} scans "
            f"({result['n_slices']['train']} slices), selected step {result['selected_step']} on valid; "
            f"test accuracy per slice {fmt('test_slice_accuracy')}, per patient {fmt('test_patient_accuracy')} "
            f"({result['n_scans']['test']} patients) -> {out / 'model'}")
    return {k: v for k, v in result.items() if not k.startswith("metrics_")}, text


def run_train_seg_mri(
    data_dir: Path,
    *,
    out_dir: Path,
    config: Path | None = None,
    overrides: dict[str, Any] | None = None,
    val_fraction: float = 0.2,
    threads: int | None = 1,
) -> tuple[dict[str, Any], str]:
    """``train-seg --task mri``: the 2D slice-wise MR/CT liver segmenter.

    ``data_dir`` is a folder with ``manifest.csv`` holding ``file,mask[,source,case_id]`` (2D slices,
    like ../shared/data/ct-liver-slices) or ``case_id,image,mask`` (NIfTI volumes, like
    ../shared/data/mr-ct-liver), a CirrMRI600+ root (train/valid scans with masks; grouped by
    subject id, so T1 and T2 of one patient stay together) or a LiQA root (GED4 + mask_GED4). Defaults < YAML ``config`` <
    ``overrides`` (``arch``, ``epochs``, ``batch_size``, ``lr``, ``img_size``, ``seed``, plus YAML-only
    ``n_synthetic`` and ``mean_teacher``). A ``val_fraction`` of the cases (grouped) is held out and
    scored with Dice/HD95 (monai.metrics).
    """
    import csv

    import numpy as np
    import yaml
    from pydantic import BaseModel, ConfigDict, ValidationError

    from liverfib.evaluation.segmentation import dice_hd95
    from liverfib.models.bundle import save_bundle
    from liverfib.mri.seg_training import (
        SliceSample,
        slices_from_ct_folder,
        slices_from_synthetic,
        slices_from_volumes,
        train_segmenter,
    )
    from liverfib.mri.segmentation import SegModel, SegModelConfig, seg_bundle_fields
    from liverfib.report.jsonio import write_json

    class SegTrainConfig(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        arch: str = "unet-lite0"
        img_size: int = 160
        epochs: float | None = None
        steps: int = 300
        batch_size: int = 8
        lr: float = 1e-3
        seed: int = 0
        n_synthetic: int = 0
        mean_teacher: float = 0.0

    values: dict[str, Any] = {}
    if config is not None:
        try:
            values = yaml.safe_load(Path(config).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{config}: cannot read YAML config ({exc})") from None
    values.update(overrides or {})
    try:
        cfg = SegTrainConfig(**values)
        model_cfg = SegModelConfig(arch=cfg.arch, img_size=cfg.img_size)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"invalid mri segmentation option: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}") from None
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    data_dir = Path(data_dir)
    manifest = data_dir / "manifest.csv"
    samples: list[SliceSample]
    if manifest.is_file():
        with manifest.open(newline="") as fh:
            columns = set(csv.DictReader(fh).fieldnames or [])
        if {"file", "mask"} <= columns:
            samples = slices_from_ct_folder(data_dir, cfg.img_size)
        elif {"case_id", "image", "mask"} <= columns:
            samples = slices_from_volumes(data_dir, cfg.img_size)
        else:
            raise InputError(f"{manifest}: expected columns file,mask or case_id,image,mask, found {sorted(columns)}")
    elif any(d.name.startswith("Cirrhosis_T") for d in data_dir.iterdir()) or data_dir.name.startswith("Cirrhosis_T"):
        samples = cirrmri_slices(data_dir, cfg.img_size)
    else:
        samples = liqa_slices(data_dir, cfg.img_size)
    if cfg.n_synthetic:
        samples += slices_from_synthetic(cfg.n_synthetic, cfg.img_size, seed=cfg.seed + 1)
    groups = sorted({s.group for s in samples})
    rng = np.random.default_rng(cfg.seed)
    n_val = int(round(val_fraction * len(groups))) if len(groups) > 1 else 0
    val_groups = set(rng.choice(groups, size=n_val, replace=False).tolist()) if n_val else set()
    train = [s for s in samples if s.group not in val_groups]
    steps = cfg.steps if cfg.epochs is None else max(1, int(cfg.epochs * len(train) / cfg.batch_size))
    unlabelled = slices_from_synthetic(8, cfg.img_size, seed=cfg.seed + 2, with_masks=False) if cfg.mean_teacher else []
    import re

    from liverfib.progress import Progress

    with Progress(steps, "train-seg mri", "step") as bar:
        def show(message: str) -> None:  # "step 25/300 loss 0.412 (31 s)" every 25 steps
            m = re.match(r"step (\d+)/\d+ loss ([0-9.]+)", message)
            if m:
                bar.set(int(m.group(1)), loss=float(m.group(2)))

        net, log = train_segmenter(train, cfg=model_cfg, steps=steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                   seed=cfg.seed, unlabelled=unlabelled, mean_teacher_weight=cfg.mean_teacher,
                                   log=show)
    model = SegModel(net, model_cfg)
    per_case: dict[str, list[float]] = {}
    for s in samples:
        if s.group in val_groups and s.mask is not None:
            d, _ = dice_hd95(model.segment(s.image.astype(np.float32)), s.mask)
            if d is not None:
                per_case.setdefault(s.group, []).append(d)
    case_dice = [float(np.mean(v)) for v in per_case.values()]
    result = {
        "task": "mri", "data": str(data_dir), "n_train_slices": len(train), "n_val_cases": len(val_groups),
        "val_dice_mean": float(np.mean(case_dice)) if case_dice else None,
        "val_unit": "case (mean slice Dice at the model's input size)", "steps": len(log),
        "config": cfg.model_dump(), "weights": "ImageNet lite0 encoder (offline)" if cfg.arch == "unet-lite0" else "random init",
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump()))
    write_json(result, out_dir / "metrics.json")
    save_bundle(out_dir / "model", net, **seg_bundle_fields(model_cfg, trained_on=str(data_dir),
                                                           val_dice_mean=result["val_dice_mean"]))
    return result, f"trained {len(log)} steps on {len(train)} slices; val Dice {result['val_dice_mean']} -> {out_dir / 'model'}"
