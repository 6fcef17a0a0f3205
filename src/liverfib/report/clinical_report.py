"""Per-study report: overlay pictures, an HTML page (jinja2) and a PDF (matplotlib PdfPages).

The PDF is drawn with matplotlib, not printed from the HTML by a browser, so it needs no
Chromium and looks the same on every machine. Both carry the "research use only" notice.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from liverfib._version import __version__
from liverfib.io.atomic import atomic_write

__all__ = ["NOTICE", "overlay_rgb", "overlay_rgba", "render_report_html", "write_png", "write_report"]

NOTICE = (
    "RESEARCH USE ONLY. Not a medical device; not for diagnosis. The model's measured accuracy and its "
    "limits are stated below."
)

#: RGB colours of mask kinds.
COLOURS = {"liver": (60, 200, 80), "fov": (70, 130, 255), "cam": (255, 60, 40)}


def _gray_u8(gray: np.ndarray) -> np.ndarray:
    if gray.dtype == np.uint8:
        return gray
    a = gray.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    return np.zeros(a.shape, np.uint8) if hi <= lo else ((a - lo) * 255.0 / (hi - lo)).astype(np.uint8)


def overlay_rgba(
    shape: tuple[int, int], masks: Mapping[str, np.ndarray], cam: np.ndarray | None = None
) -> np.ndarray:
    """A transparent ``(H, W, 4)`` uint8 layer: mask outlines (by kind) and a CAM heat map in [0, 1]."""
    import cv2

    h, w = shape
    layer = np.zeros((h, w, 4), np.uint8)
    if cam is not None:
        heat = np.clip(cam.astype(np.float32), 0.0, 1.0)
        coloured = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
        layer[..., :3] = coloured
        layer[..., 3] = (heat * 160).astype(np.uint8)
    thick = max(1, round(min(h, w) / 200))
    for kind, mask in masks.items():
        edge = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        if thick > 1:
            edge = cv2.dilate(edge.astype(np.uint8), np.ones((thick, thick), np.uint8)) > 0
        layer[edge, :3] = COLOURS.get(kind, (255, 255, 0))
        layer[edge, 3] = 255
    return layer


def overlay_rgb(gray: np.ndarray, layer: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """Composite an :func:`overlay_rgba` layer on a gray ``(H, W)`` image -> ``(H, W, 3)`` uint8."""
    base = np.repeat(_gray_u8(gray)[..., None], 3, axis=2).astype(np.float32)
    alpha = layer[..., 3:4].astype(np.float32) / 255.0 * float(opacity)
    return (base * (1 - alpha) + layer[..., :3].astype(np.float32) * alpha).round().astype(np.uint8)


def write_png(array: np.ndarray, path: str | Path) -> Path:
    """Write a gray, RGB or RGBA uint8 array as PNG (atomically)."""
    from PIL import Image as PILImage

    path = Path(path)
    buf = io.BytesIO()
    PILImage.fromarray(_gray_u8(array) if array.ndim == 2 else array).save(buf, format="PNG")
    atomic_write(path, data=buf.getvalue())
    return path


def _entropy(probs: Mapping[str, float]) -> float:
    """Normalised entropy of the stage distribution in [0, 1] (0 = certain, 1 = uniform)."""
    p = np.asarray([v for v in probs.values() if v > 0], float)
    if len(probs) < 2:
        return 0.0
    return float(-(p * np.log(p)).sum() / math.log(len(probs)))


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>liverfib report {{ r.name|e }}</title>
<style>
body{font-family:sans-serif;max-width:60em;margin:1em auto;color:#222}
.notice{background:#fff3cd;border:1px solid #e0c060;padding:.5em;font-weight:bold}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
.bar{background:#4a7bd0;height:1em;display:inline-block}
img{width:360px;max-width:100%;image-rendering:pixelated}
</style></head><body>
<h1>Liver fibrosis report</h1>
<p class="notice">{{ notice|e }}</p>
<h2>Patient / study</h2>
<table>
{% for k, v in header.items() %}<tr><th>{{ k|e }}</th><td>{{ v|e }}</td></tr>
{% endfor %}</table>
{% if r.status != 'done' %}<h2>Status: {{ r.status|e }}</h2><p>{{ r.error|e }}</p>{% endif %}
{% if r.probabilities %}
<h2>Ultrasound staging</h2>
<p>Predicted METAVIR stage: <b>{{ r.stage|e }}</b>
 &nbsp; P(&ge;F2) = {{ '%.2f'|format(r.p_ge_f2) }}, P(&ge;F3) = {{ '%.2f'|format(r.p_ge_f3) }},
 P(F4) = {{ '%.2f'|format(r.p_f4) }}</p>
<p>Uncertainty: normalised entropy of the stage probabilities {{ '%.2f'|format(entropy) }}
 (0 = one stage certain, 1 = all stages equally likely). These are model probabilities, not a
 confidence interval; how often the model is right is measured below.</p>
<table><tr><th>stage</th><th>probability</th><th></th></tr>
{% for s, p in r.probabilities.items() %}<tr><td>{{ s|e }}</td><td>{{ '%.3f'|format(p) }}</td>
<td><span class="bar" style="width:{{ (p*300)|round|int }}px"></span></td></tr>
{% endfor %}</table>
{% if r.warning %}<p><b>Warning:</b> {{ r.warning|e }}</p>{% endif %}
{% endif %}
{% if r.model_accuracy %}<h2>How accurate is this model?</h2>
<p><b>Measured:</b> {{ r.model_accuracy.figure|e }}{% if r.model_accuracy.source %}
 <br><small>Source: {{ r.model_accuracy.source|e }}{% if r.model_accuracy.synthetic %} (SYNTHETIC data){% endif %}</small>{% endif %}</p>
{% if r.model_accuracy.caveat %}<p><b>Caveat:</b> {{ r.model_accuracy.caveat|e }}</p>{% endif %}
{% endif %}
{% if r.mre %}<h2>MR elastography</h2><table>
{% for k, v in r.mre.items() %}<tr><th>{{ k|e }}</th><td>{{ v|e }}</td></tr>{% endfor %}</table>{% endif %}
{% if images %}<h2>Images</h2>
{% for title, uri in images %}<figure><img src="{{ uri }}" alt="{{ title|e }}"><figcaption>{{ title|e }}</figcaption></figure>
{% endfor %}{% if r.overlay_legend %}<p><b>Overlay colours:</b> {{ r.overlay_legend|e }}</p>{% endif %}{% endif %}
{% if r.notes %}<h2>Notes</h2><ul>{% for n in r.notes %}<li>{{ n|e }}</li>{% endfor %}</ul>{% endif %}
<h2>Software</h2><table>
<tr><th>liverfib</th><td>{{ version|e }}</td></tr>
{% for k, v in models.items() %}<tr><th>{{ k|e }}</th><td>{{ v|e }}</td></tr>{% endfor %}
</table>
</body></html>
"""


def _header(result: Mapping[str, Any], deidentified: bool) -> dict[str, str]:
    study = dict(result.get("study", {}))
    header = {
        "Patient name": study.get("PatientName", ""),
        "Patient ID": study.get("PatientID", ""),
        "Study date": study.get("StudyDate", ""),
        "Modality": study.get("Modality", ""),
        "Study UID": study.get("StudyInstanceUID", ""),
        "Input": result.get("name", ""),
    }
    if deidentified:
        for key in ("Patient name", "Patient ID", "Study date"):
            header[key] = "(removed)"
    return {k: str(v) for k, v in header.items()}


def render_report_html(
    result: Mapping[str, Any], out_dir: str | Path, *, deidentified: bool = False
) -> str:
    """The HTML report of one job; images from ``out_dir`` are embedded (one self-contained file)."""
    import jinja2

    out_dir = Path(out_dir)
    images = []
    for fname, title in (
        ("overlay.png", "Image with overlay"),
        ("image.png", "Input image"),
        ("mre_map.png", "MRE stiffness map (kPa; colour bar on the right; ROI outlined)"),
    ):
        f = out_dir / fname
        if f.is_file():
            images.append((title, "data:image/png;base64," + base64.b64encode(f.read_bytes()).decode()))
    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    models = {k: str(v) for k, v in dict(result.get("models", {})).items()}
    return env.from_string(_TEMPLATE).render(
        r=result,
        header=_header(result, deidentified),
        notice=NOTICE,
        entropy=_entropy(result.get("probabilities") or {}),
        images=images,
        models=models,
        version=__version__,
    )


def _write_pdf(result: Mapping[str, Any], out_dir: Path, path: Path, deidentified: bool) -> None:
    """One A4 page: header, headline finding, probability bars, the image, then accuracy and notes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    fig = plt.figure(figsize=(8.27, 11.69))  # A4 portrait, inches
    fig.text(0.5, 0.965, "Liver fibrosis report", ha="center", fontsize=16, weight="bold")
    fig.text(0.5, 0.94, NOTICE, ha="center", fontsize=7, wrap=True, color="#8a5a00")
    y = 0.90
    for k, v in _header(result, deidentified).items():
        fig.text(0.08, y, f"{k}: {v}"[:110], fontsize=8)
        y -= 0.018
    probs = dict(result.get("probabilities") or {})
    _pdf_headline(fig, result, probs, y - 0.01)
    if probs:
        ax = fig.add_axes((0.1, 0.52, 0.35, 0.2))
        ax.bar(list(probs), list(probs.values()), color="#4a7bd0")
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability")
        ax.set_title("Stage probabilities", fontsize=9)
    img = out_dir / "overlay.png"
    if not img.is_file():
        img = out_dir / "mre_map.png"
    if img.is_file():
        from PIL import Image as PILImage

        ax = fig.add_axes((0.52, 0.45, 0.42, 0.32))
        ax.imshow(np.asarray(PILImage.open(img)))
        ax.set_axis_off()
        ax.set_title("Image with overlay" if img.name == "overlay.png" else "MRE stiffness map (kPa)", fontsize=9)
    for i, line in enumerate(_pdf_footer(result)[:22]):
        fig.text(0.08, 0.40 - 0.018 * i, str(line)[:120], fontsize=7)
    buf = io.BytesIO()
    with PdfPages(buf) as pdf:
        pdf.savefig(fig)
    plt.close(fig)
    atomic_write(path, data=buf.getvalue())


def _pdf_headline(fig: Any, result: Mapping[str, Any], probs: dict[str, Any], y: float) -> None:
    """The finding in one bold line at height ``y``: MRE stiffness, the US stage, or the job status."""
    if result.get("stiffness_kpa") is not None and not probs:
        fig.text(
            0.08,
            y,
            f"MRE liver stiffness {result['stiffness_kpa']:.2f} kPa -> stage {result.get('stage')} (cut-offs)",
            fontsize=10,
            weight="bold",
        )
    elif probs:
        fig.text(
            0.08,
            y,
            f"Predicted METAVIR stage {result['stage']}   P(>=F2) {result['p_ge_f2']:.2f}   "
            f"P(>=F3) {result['p_ge_f3']:.2f}   P(F4) {result['p_f4']:.2f}   "
            f"entropy {_entropy(probs):.2f}",
            fontsize=10,
            weight="bold",
        )
    elif result.get("status") != "done":
        fig.text(0.08, y, f"Status {result.get('status')}: {result.get('error', '')}"[:120], fontsize=9)


def _pdf_footer(result: Mapping[str, Any]) -> list[Any]:
    """Lines below the image: measured accuracy and caveat, overlay legend, versions, notes."""
    import textwrap

    notes = list(result.get("notes") or [])
    models = dict(result.get("models") or {})
    acc = dict(result.get("model_accuracy") or {})
    measured = [f"Measured accuracy: {acc.get('figure')}", f"Caveat: {acc.get('caveat')}"] if acc else []
    legend = [f"Overlay colours: {result['overlay_legend']}"] if result.get("overlay_legend") else []
    wrapped = [w for line in measured + legend for w in textwrap.wrap(line, 120) if "None" not in line or w]
    return wrapped + [f"liverfib {__version__}"] + [f"{k}: {v}" for k, v in models.items()] + notes


def write_report(
    result: Mapping[str, Any], out_dir: str | Path, *, deidentified: bool = False
) -> dict[str, Path]:
    """Write ``report.html`` and ``report.pdf`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    html_path = out_dir / "report.html"
    atomic_write(html_path, data=render_report_html(result, out_dir, deidentified=deidentified).encode())
    pdf_path = out_dir / "report.pdf"
    _write_pdf(result, out_dir, pdf_path, deidentified)
    return {"html": html_path, "pdf": pdf_path}
