"""Clinical integration workflow: analyse one study into DICOM results and a report; run the servers.

``analyse_file`` is the one place where a received input becomes results:
read -> route -> stage (US) -> liver mask / CAM when available -> SEG + SR + SC -> report.
The DICOM listener and the web app only queue jobs; :func:`make_processor` runs them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from liverfib.errors import ConfigError, InputError, LiverfibError

__all__ = [
    "ClinicalConfig",
    "ModelCache",
    "analyse_file",
    "make_processor",
    "run_deidentify",
    "run_report",
    "run_serve",
    "run_serve_dicom",
]


class ClinicalConfig(BaseModel):
    """What an analysis produces (frozen; unknown keys rejected)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "default"
    with_cam: bool = True
    with_liver: bool = True
    deidentified_report: bool = False
    pdf: bool = True


class ModelCache:
    """Models loaded once per process and shared by the worker (loaded lazily, thread-safe)."""

    def __init__(self, cfg: ClinicalConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._predictor: Any = None
        self._segmenter: Any = None
        self._segmenter_note: str | None = None

    def derive(self, **changes: Any) -> ModelCache:
        """A cache with some settings changed that shares the models already loaded."""
        other = ModelCache(self.cfg.model_copy(update=changes))
        if other.cfg.model == self.cfg.model:
            other._predictor = self._predictor
            other._segmenter, other._segmenter_note = self._segmenter, self._segmenter_note
        return other

    def predictor(self) -> Any:
        with self._lock:
            if self._predictor is None:
                from liverfib.inference.predictor import load_predictor

                self._predictor = load_predictor(self.cfg.model)
            return self._predictor

    def segmenter(self) -> tuple[Any, str | None]:
        with self._lock:
            if self._segmenter is None and self._segmenter_note is None:
                try:
                    from liverfib.inference.segmenter import load_segmenter

                    self._segmenter = load_segmenter("default")
                except (ImportError, LiverfibError) as exc:
                    self._segmenter_note = f"liver segmentation not available ({exc}); no liver mask"
            return self._segmenter, self._segmenter_note


# ------------------------------------------------------------------------------------- analysis
def _study_tags(ds: Any) -> dict[str, str]:
    keys = ("PatientName", "PatientID", "StudyDate", "Modality", "StudyInstanceUID", "SeriesInstanceUID")
    return {k: str(ds.get(k, "") or "") for k in keys}


def analyse_file(
    path: Path, out_dir: Path, *, models: ModelCache, name: str | None = None
) -> dict[str, Any]:
    """Analyse one image file (DICOM or raster) into ``out_dir``; returns the result dict.

    Writes ``image.png``, ``overlay.png`` (RGBA layer), ``seg.dcm``, ``sr.dcm``, ``sc.dcm``,
    ``result.json`` and, with ``cfg.pdf``, ``report.html``/``report.pdf``.

    Raises:
        InputError: unreadable input, not B-mode ultrasound, multi-frame input.
    """
    import numpy as np

    from liverfib.clinical.dicom_out import (
        Segment,
        dataset_from_array,
        read_dicom_dataset,
        save_dataset,
        write_sc,
        write_seg,
        write_sr,
    )
    from liverfib.clinical.report import overlay_rgb, overlay_rgba, write_png, write_report
    from liverfib.clinical.routing import route_dataset
    from liverfib.inference.predictor import PredictOutput, check_bmode
    from liverfib.io import read_image, sniff_kind
    from liverfib.preprocess.fan import detect_fan
    from liverfib.report.jsonio import write_json

    cfg = models.cfg
    out_dir.mkdir(parents=True, exist_ok=True)
    kind = sniff_kind(path)
    if kind == "dicom":
        source = read_dicom_dataset(path)
        route, reason = route_dataset(source)
        if route != "us-staging":
            raise InputError(f"{path.name}: {reason}; this analysis stages B-mode ultrasound")
        if int(source.get("NumberOfFrames", 1) or 1) > 1:
            raise InputError(f"{path.name}: multi-frame ultrasound (cine) is not analysed yet; send one frame")
        image = read_image(path)
    elif kind == "raster":
        image = read_image(path)
        source = dataset_from_array(image.array, series_description=f"upload {name or path.name}"[:64])
        save_dataset(source, out_dir / "source.dcm")
    else:
        raise InputError(f"{path.name}: not an image (expected DICOM, PNG, JPEG, BMP or TIFF content)")
    warning = check_bmode(image)
    predictor = models.predictor()
    probs = predictor.predict_arrays([image.array])
    record = PredictOutput([path], probs, predictor.classes, [warning]).as_records()[0]
    notes: list[str] = []
    fan = detect_fan(image.array)
    masks: dict[str, np.ndarray] = {"fov": fan.mask}
    segments = [Segment("Ultrasound field of view", fan.mask, "fov")]
    liver_area_mm2 = None
    if cfg.with_liver:
        segmenter, note = models.segmenter()
        if segmenter is not None:
            liver = segmenter.predict(image)
            masks["liver"] = liver
            segments.append(Segment("Liver", liver, "liver"))
            if image.spacing_mm is not None and liver.any():
                liver_area_mm2 = float(liver.sum() * image.spacing_mm[0] * image.spacing_mm[1])
        elif note:
            notes.append(note)
    heat = None
    if cfg.with_cam:
        try:
            from liverfib.explain.cam import compute_cams
            from liverfib.explain.pseudo_masks import cam_to_mask

            heat = compute_cams(predictor, [image.array])[0].heatmap
            cam_mask = cam_to_mask(heat, fan.mask, "otsu")
            if cam_mask.any():
                segments.append(Segment("Grad-CAM pseudo-mask (model attention, not anatomy)", cam_mask, "cam"))
            notes.append("Grad-CAM shows where the model looked; it is not a lesion or liver outline")
        except ImportError as exc:
            notes.append(f"Grad-CAM not available ({exc})")
    layer = overlay_rgba(image.array.shape, masks, heat)
    gray = image.array
    write_png(gray, out_dir / "image.png")
    write_png(layer, out_dir / "overlay_layer.png")
    composite = overlay_rgb(gray, layer)
    write_png(composite, out_dir / "overlay.png")
    findings = {
        "stage": record["stage"],
        "probabilities": record["probabilities"],
        "p_ge_f2": record["p_ge_f2"],
        "p_ge_f3": record["p_ge_f3"],
        "p_f4": record["p_f4"],
        "liver_area_mm2": liver_area_mm2,
        "model": f"us-staging:{cfg.model}",
    }
    write_seg(source, segments, out_dir / "seg.dcm")
    write_sr(source, findings, out_dir / "sr.dcm")
    write_sc(source, composite, out_dir / "sc.dcm")
    desc = predictor.describe()
    result: dict[str, Any] = {
        "status": "done",
        "name": name or path.name,
        "route": "us-staging",
        **findings,
        "warning": warning,
        "study": _study_tags(source),
        "segments": [s.label for s in segments],
        "notes": notes,
        "models": {
            "staging": f"{desc.get('name')} ({desc.get('backbone', desc.get('arch', '?'))}; "
            f"weights: {desc.get('weights_origin') or 'not recorded'})",
        },
        "model_accuracy": _accuracy_of("us_staging_default" if str(cfg.model) == "default" else None, cfg.model),
        "overlay_legend": _legend(masks, heat is not None),
        "files": ["image.png", "overlay.png", "overlay_layer.png", "seg.dcm", "sr.dcm", "sc.dcm"],
    }
    if cfg.pdf:
        write_report(result, out_dir, deidentified=cfg.deidentified_report)
        result["files"] += ["report.html", "report.pdf"]
    write_json(result, out_dir / "result.json")
    return result


def _first_dicom(folder: Path) -> Path | None:
    for f in sorted(folder.rglob("*.dcm")):
        return f
    return None


def _analyse_mre(job: Any) -> dict[str, Any]:
    """MR elastography study folder -> stiffness (kPa) and stage via :func:`liverfib.pipeline.mre.run_mre`,
    written as a TID 1500 SR referencing one image of the study."""
    import shutil

    import numpy as np

    from liverfib.clinical.dicom_out import read_dicom_dataset, write_sc, write_sr
    from liverfib.pipeline.mre import run_mre
    from liverfib.report.jsonio import write_json

    study_dir, out_dir = Path(job.input_path), Path(job.out_dir) / job.id
    summary, _text = run_mre(study_dir, out_dir=out_dir, overlays=True)
    kpa = summary.get("mean_stiffness_kpa")
    if kpa is None:
        raise InputError(f"{study_dir.name}: MRE read, but no valid liver ROI to measure stiffness in")
    first = _first_dicom(study_dir)
    if first is None:
        raise InputError(f"{study_dir}: no DICOM file to reference from the SR")
    source = read_dicom_dataset(first)
    findings = {"stage": summary.get("stage"), "stiffness_kpa": kpa, "model": "mre:default",
                "synthetic": bool(summary.get("synthetic"))}
    write_sr(source, findings, out_dir / "sr.dcm")
    files = ["sr.dcm", "mre.json"]
    overlays = [Path(p) for p in summary.get("overlays") or []]
    if overlays:  # the slice with the largest ROI: stiffness map with its colour bar
        areas = [s.get("area_mm2") or 0.0 for s in summary["slices"]]
        shutil.copyfile(overlays[int(np.argmax(areas))], out_dir / "mre_map.png")
        from PIL import Image as PILImage

        rgb = np.asarray(PILImage.open(out_dir / "mre_map.png").convert("RGB"))
        write_sc(source, rgb, out_dir / "sc.dcm", description="liverfib MRE stiffness map (research use)")
        files += ["mre_map.png", "sc.dcm"]
    result = {
        "status": "done",
        "name": job.name,
        "route": "mre",
        "stage": summary.get("stage"),
        "stiffness_kpa": kpa,
        "probabilities": {},
        "study": _study_tags(source),
        "mre": {
            "mean stiffness (kPa)": f"{kpa:.2f}",
            "stage (from cut-offs)": str(summary.get("stage")),
            "ROI area (cm2)": f"{summary.get('roi_area_mm2', 0) / 100:.1f}",
            "cut-offs": str(summary.get("cutoffs_source")),
        },
        "notes": list(summary.get("warnings") or []),
        "models": {"mre liver segmentation": str(summary.get("segmentation", {}).get("model", "?"))},
        "model_accuracy": _accuracy_of(
            "mre_seg_default" if summary.get("segmentation", {}).get("source") == "model" else None, "own mask"
        ),
        "overlay_legend": "stiffness map in kPa (colour bar beside it); the measured ROI is outlined",
        "files": files,
    }
    from liverfib.clinical.report import write_report

    write_report(result, out_dir)
    result["files"] += ["report.html", "report.pdf"]
    write_json(result, out_dir / "result.json")
    return result


def _analyse_mr(job: Any) -> tuple[str, dict[str, Any] | None, str | None]:
    """MR routes: MRE studies go to the MRE workflow; DICOM multi-phase MRI is not analysed yet."""
    if job.kind == "mri":
        return (
            "unsupported",
            None,
            "multi-phase MRI received and stored, but the MRI staging workflow reads LiQA case folders "
            "(NIfTI per phase), not DICOM series; the series is kept in the spool folder",
        )
    try:
        return "done", _analyse_mre(job), None
    except ImportError as exc:
        return "unsupported", None, f"MRE series stored, but the MRE workflow is not available ({exc})"
    except LiverfibError as exc:
        return "failed", None, str(exc)


def make_processor(
    cfg: ClinicalConfig,
    *,
    store: Any = None,
    forward: Any = None,
    calling_aet: str = "LIVERFIB",
    models: ModelCache | None = None,
) -> Callable[[Any], tuple[str, dict[str, Any] | None, str | None]]:
    """The job function of the worker: analyse, then C-STORE SEG/SR/SC to ``forward`` if given.

    ``models`` shares loaded models between processors (its config wins over ``cfg``).
    """
    models = models or ModelCache(cfg)

    def process(job: Any) -> tuple[str, dict[str, Any] | None, str | None]:
        from liverfib.clinical.pacs import reidentify, send_files

        out_dir = Path(job.out_dir) / job.id
        if job.kind in ("mre", "mri"):
            status, result, error = _analyse_mr(job)
            if status != "done" or result is None:
                return status, result, error
        elif job.kind != "us-staging":
            return "unsupported", None, f"no analysis for kind {job.kind!r}"
        else:
            try:
                result = analyse_file(Path(job.input_path), out_dir, models=models, name=job.name)
            except LiverfibError as exc:
                return "failed", None, str(exc)
        if forward is not None and job.origin == "dicom":
            files = [out_dir / f for f in ("seg.dcm", "sr.dcm", "sc.dcm") if (out_dir / f).is_file()]
            try:
                # identifiers come back only where the operator kept the pseudonym map
                transform = (lambda ds: reidentify(ds, store.pseudonyms)) if store is not None else None
                sent = send_files(files, forward, calling_aet=calling_aet, transform=transform)
            except (OSError, RuntimeError, ValueError) as exc:
                sent = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            if store is not None:
                store.set_forwarded(job.id, sent)
            result["forwarded"] = sent
        return "done", result, None

    process.models = models  # type: ignore[attr-defined]
    return process


# --------------------------------------------------------------------------------- CLI twins
def _accuracy_of(shipped: str | None, model: Any) -> dict[str, Any]:
    """What a report reader needs about the model's measured accuracy (from the model catalogue)."""
    from liverfib.models.catalog import model_accuracy

    found = model_accuracy(shipped) if shipped else None
    if found is None:
        return {"model": str(model), "figure": "not measured by liverfib (a user-supplied model); validate it "
                "on your own data", "source": None, "synthetic": None, "caveat": ""}
    return found


def _legend(masks: dict[str, Any], with_cam: bool) -> str:
    """The overlay colours actually drawn, in words (see ``clinical.report.overlay_rgba``)."""
    names = {"liver": "green outline = liver (segmenter)", "fov": "blue outline = ultrasound field of view (fan)"}
    parts = [names[k] for k in ("fov", "liver") if k in masks]
    if with_cam:
        parts.append("blue-to-red shading = Grad-CAM, where the model looked (red most; not anatomy)")
    return "; ".join(parts)


def run_deidentify(
    src: Path, out_dir: Path, *, salt: str | None = None, mask_burned_in: bool = True, strict: bool = False
) -> tuple[dict[str, Any], str]:
    """De-identify a DICOM file or folder into ``out_dir`` (Basic Profile; see clinical.deidentify).

    Files that are not DICOM are skipped and listed; none de-identified (or any skipped with
    ``strict``) raises :class:`InputError`."""
    import os

    from liverfib.clinical.deidentify import deidentify_path
    from liverfib.io.outputs import check_output_dir

    if not Path(src).exists():
        raise InputError(f"{src}: file or folder not found")
    check_output_dir(out_dir, option="OUT")

    salt = salt or os.environ.get("LIVERFIB_DEID_SALT")
    if not salt:
        raise ConfigError(
            "no salt: pass --salt SECRET or set LIVERFIB_DEID_SALT (the same secret keeps UIDs of one "
            "study consistent across runs; keep it private)"
        )
    rows = deidentify_path(src, out_dir, salt=salt, mask_burned_in=mask_burned_in)
    ok = [r for r in rows if r["status"] == "ok"]
    refused = [f"{r['input']}: {r['reason']}" for r in rows if r["status"] != "ok"]
    if not ok:
        raise InputError(f"de-identified none of {len(rows)} file(s): " + "; ".join(refused[:3]))
    if strict and refused:
        raise InputError(f"--strict: {len(refused)} file(s) not de-identified, first: {refused[0]}")
    summary = {"out": str(out_dir), "n_ok": len(ok), "n_skipped_or_failed": len(rows) - len(ok), "files": rows}
    lines = [f"de-identified {len(ok)} of {len(rows)} files into {out_dir}"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"  {r['status']}: {r['input']}: {r['reason']}")
        elif r.get("pixels_masked_fraction") is not None:
            lines.append(f"  {Path(r['output']).name}: {r['pixels_masked_fraction']:.0%} of pixels outside the fan blanked")
    return summary, "\n".join(lines)


def run_report(
    image_path: Path, out_dir: Path, *, model: str = "default", cam: bool = True, deidentified: bool = False
) -> tuple[dict[str, Any], str]:
    """Analyse one image (DICOM or raster) and write DICOM SEG/SR/SC and an HTML/PDF report."""
    if not image_path.is_file():
        raise InputError(f"{image_path}: file not found; pass one ultrasound image (DICOM, PNG or JPEG)")
    cfg = ClinicalConfig(model=model, with_cam=cam, deidentified_report=deidentified)
    result = analyse_file(image_path, out_dir, models=ModelCache(cfg))
    probs = " ".join(f"{k}={v:.2f}" for k, v in result["probabilities"].items())
    text = "\n".join(
        [
            f"{image_path.name}: stage {result['stage']} ({probs})  (research use only)",
            *(f"note: {n}" for n in result["notes"]),
            f"wrote {', '.join(result['files'])} and result.json into {out_dir}",
        ]
    )
    return result, text


def run_serve_dicom(
    *,
    data_dir: Path,
    ae_title: str = "LIVERFIB",
    host: str = "127.0.0.1",
    port: int = 11112,
    allow: list[str] | None = None,
    forward: str | None = None,
    cam: bool = True,
    model: str = "default",
    keep_identifiers: bool = False,
    until: Callable[[], bool] | None = None,
) -> tuple[dict[str, Any], str]:
    """Run the DICOM listener and the job worker until Ctrl-C (or ``until()`` returns True).

    Received instances are de-identified before they are stored; ``keep_identifiers`` keeps the
    original identifiers in the job database so that results forwarded to the PACS carry them.
    """
    from liverfib.clinical.jobs import JobStore, JobWorker
    from liverfib.clinical.pacs import DicomListener, check_port, parse_destination

    check_port(port)
    dest = parse_destination(forward) if forward else None
    if not allow:
        raise ConfigError("no calling AE title is allowed; pass --allow AE1,AE2 (or --allow '*' to accept any sender)")
    store = JobStore(data_dir / "jobs.sqlite")
    process = make_processor(
        ClinicalConfig(model=model, with_cam=cam), store=store, forward=dest, calling_aet=ae_title
    )
    worker = JobWorker(store, process).start()
    listener = DicomListener(
        store,
        data_dir / "spool",
        ae_title=ae_title,
        allowed_aets=allow,
        on_job=lambda _id: worker.notify(),
        results_dir=data_dir / "results",
        keep_identifiers=keep_identifiers,
    )
    try:
        listener.start(host, port)
    except OSError as exc:
        worker.stop()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port or --host") from None
    print(f"liverfib DICOM listener {ae_title} on {host}:{listener.port}; jobs in {store.path}", flush=True)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():  # Ctrl-C and `kill` (docker, systemd)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.is_set() and not (until and until()):
            stop.wait(0.2)
    finally:
        listener.stop()
        worker.stop()
    counts = store.counts()
    return {"jobs": counts}, f"stopped; jobs: {counts}"


def run_serve(
    *,
    data_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_upload_mb: float = 64.0,
    cam: bool = True,
    model: str = "default",
) -> tuple[dict[str, Any], str]:
    """Run the web app (token from LIVERFIB_TOKEN) with its job worker until Ctrl-C."""
    import os

    import uvicorn

    from liverfib.clinical.jobs import JobStore, JobWorker
    from liverfib.clinical.pacs import check_port
    from liverfib.clinical.web import WebConfig, create_app

    check_port(port)
    if not max_upload_mb > 0:
        raise ConfigError(f"--max-upload-mb must be above 0, got {max_upload_mb}")
    token = os.environ.get("LIVERFIB_TOKEN", "")
    if len(token) < 16:
        raise ConfigError(
            "set LIVERFIB_TOKEN to a secret of at least 16 characters before 'liverfib serve' "
            "(e.g. export LIVERFIB_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(24))'))"
        )
    store = JobStore(data_dir / "jobs.sqlite")
    worker = JobWorker(store, make_processor(ClinicalConfig(model=model, with_cam=cam))).start()
    app = create_app(
        store,
        WebConfig(data_dir=data_dir, token=token, max_upload_bytes=int(max_upload_mb * 1024 * 1024)),
        on_job=lambda _id: worker.notify(),
    )
    try:
        # limit_concurrency: beyond 64 open requests uvicorn answers 503 instead of queueing more
        uvicorn.run(app, host=host, port=port, log_level="info", limit_concurrency=64, timeout_keep_alive=5)
    finally:
        worker.stop()
    counts = store.counts()
    return {"jobs": counts}, f"stopped; jobs: {counts}"
