"""MRI staging training (``train-mri``): multi-phase (LiQA) and per-slice (CirrMRI600+) networks
(the MR/CT liver segmenter: :mod:`liverfib.pipeline.mri_seg_train`).

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
    prediction_columns,
    prob_cells,
)

__all__ = ["run_mri_train"]


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
    from liverfib.io.jsonio import write_json
    from liverfib.models.bundle import save_bundle
    from liverfib.mri.layouts import list_liqa_exams
    from liverfib.mri.staging import StagingConfig, cumulative_to_stage_probs, staging_bundle_fields
    from liverfib.mri.staging_train import predict_cumulative, prepare_exam, stack_crops, train_staging
    from liverfib.pipeline._common import write_rows

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

    from pydantic import ValidationError

    from liverfib.io.jsonio import write_json
    from liverfib.models.bundle import save_bundle
    from liverfib.mri.layouts import list_cirrmri_exams
    from liverfib.mri.slice_staging import SliceStagingConfig, train_slice_staging
    from liverfib.mri.staging import staging_bundle_fields
    from liverfib.pipeline._common import write_rows
    from liverfib.progress import Progress

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
    prepared = {split: _scan_slices(members, split, cfg, seg) for split, members in by_split.items()}
    bar = Progress(steps, "train-mri", "step")
    tr, va = prepared["train"], prepared["valid"]
    net, log, best = train_slice_staging(tr["x"], tr["y"], cfg, x_val=va["x"], y_val=va["y"], steps=steps, seed=seed,
                                         progress=lambda step, message: bar.set(step, status=message))
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
    if len(prepared["test"]["y"]):
        result.update(_score_cirrmri_test(net, prepared["test"], by_split["test"], cfg, out, n_boot=n_boot, seed=seed))
    else:
        result.update(test_slice_accuracy=None, test_patient_accuracy=None, note="no test_images scans: no test metrics")
    result["seconds"] = round(time.time() - t0, 1)
    write_rows(log, out / "log.csv", ["step", "loss", "seconds", "val_accuracy", "val_log_loss"])
    write_json(result, out / "metrics.json")
    heldout = {k: v for k, v in result.items() if not k.startswith("metrics_")}
    save_bundle(out / "model", net, **staging_bundle_fields(
        net, data=_data_note(data), synthetic=_is_synthetic(data), layout="cirrmri", sequence=sequence,
        classes=classes, heldout=heldout))
    return heldout, _cirrmri_text(result, len(log), sequence, out)


def _scan_slices(exams: list[Any], split: str, cfg: Any, seg: LazySegmenter) -> dict[str, Any]:
    """The 2.5D liver slices of the scans of one split: ``x``, class index ``y``, patient ``groups`` and
    ``meta`` ``(exam, slice index, mask source)`` per slice."""
    import numpy as np

    from liverfib.mri.slice_staging import scan_slices

    xs, ys, groups, rows_meta = [], [], [], []
    for e in case_progress(exams, f"prepare {split}"):
        try:
            s = scan_slices(e, cfg, seg_model=seg)
        except InputError as exc:
            raise InputError(f"scan {e.case_id} ({split}): {exc}") from None
        xs.append(s.x)
        ys += [e.stage - 1] * len(s.x)  # type: ignore[operator]
        groups += [str(e.meta["subject"])] * len(s.x)
        rows_meta += [(e, int(k), s.mask_source) for k in s.slice_index]
    return {"x": np.concatenate(xs) if xs else np.zeros((0, 3, cfg.crop_size, cfg.crop_size), np.float16),
            "y": np.array(ys, dtype=np.int64), "groups": groups, "meta": rows_meta}


def _score_cirrmri_test(net: Any, te: dict[str, Any], exams: list[Any], cfg: Any, out: Path, *, n_boot: int,
                        seed: int) -> dict[str, Any]:
    """Score the test slices per slice and per patient (mean of the slice probabilities); writes both
    predictions CSVs and returns the result fields."""
    from liverfib.evaluation.metrics import evaluate_probabilities
    from liverfib.mri.slice_staging import average_by_group, predict_slice_probs
    from liverfib.pipeline._common import write_rows

    classes, sequence = list(cfg.classes), cfg.sequence
    p = predict_slice_probs(net, te["x"])
    y_names = [classes[i] for i in te["y"]]
    m_slice = evaluate_probabilities(y_names, p, classes, groups=te["groups"], n_boot=n_boot, seed=seed)
    keys, p_pat = average_by_group(p, te["groups"])
    label_of = dict(zip(te["groups"], y_names, strict=True))
    m_pat = evaluate_probabilities([label_of[k] for k in keys], p_pat, classes, groups=keys, n_boot=n_boot, seed=seed)
    cols = prediction_columns(classes, ["slice"])
    slice_rows = [{"path": f"{e.phase_paths[e.phases[0]]}#z{k}", "label": lab, "group": g, "source": sequence,
                   "slice": k, **prob_cells(classes, pk)}
                  for (e, k, _), lab, g, pk in zip(te["meta"], y_names, te["groups"], p, strict=True)]
    path_of = {str(e.meta["subject"]): str(e.phase_paths[e.phases[0]]) for e in exams}
    patient_rows = [{"path": path_of[k], "label": label_of[k], "group": k, "source": sequence, "slice": "mean",
                     **prob_cells(classes, pk)}
                    for k, pk in zip(keys, p_pat, strict=True)]
    write_rows(slice_rows, out / "test_predictions_slices.csv", cols)
    write_rows(patient_rows, out / "test_predictions_patients.csv", cols)
    return dict(
        test_slice_accuracy=m_slice["accuracy"], test_slice_accuracy_ci95=m_slice["ci95"]["accuracy"],
        test_patient_accuracy=m_pat["accuracy"], test_patient_accuracy_ci95=m_pat["ci95"]["accuracy"],
        test_slice_macro_auc=m_slice["macro_auc"], test_patient_macro_auc=m_pat["macro_auc"],
        test_patient_confusion_matrix=m_pat["confusion_matrix"],
        metrics_slice=m_slice, metrics_patient=m_pat,
    )


def _cirrmri_text(result: dict[str, Any], n_steps: int, sequence: str, out: Path) -> str:
    def fmt(key: str) -> str:
        v, ci = result.get(key), result.get(f"{key}_ci95")
        return "n/a" if v is None else f"{v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    return (f"trained {n_steps} steps on {result['n_scans']['train']} {sequence} scans "
            f"({result['n_slices']['train']} slices), selected step {result['selected_step']} on valid; "
            f"test accuracy per slice {fmt('test_slice_accuracy')}, per patient {fmt('test_patient_accuracy')} "
            f"({result['n_scans']['test']} patients) -> {out / 'model'}")
