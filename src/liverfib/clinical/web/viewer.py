"""What a job page shows around a result: the 3D volume viewer (NiiVue, served from the package),
the legend of the colours drawn, the model's measured accuracy with its caveat, and a SYNTHETIC
banner when the result is synthetic."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["VOLUME_FILES", "MRE_VMAX_KPA", "job_context", "CONTEXT_HTML", "VOLUME_HTML"]

#: Volume files a job folder may hold for the viewer (all served as gzip-compressed NIfTI).
VOLUME_FILES = ("volume.nii.gz", "liver_mask.nii.gz", "magnitude.nii.gz", "stiffness_kpa.nii.gz")
#: Top of the stiffness colour scale, as in the MRE overlay PNGs (``mre.plots``).
MRE_VMAX_KPA = 8.0

#: Legend swatch (a CSS class of viewer.css) for the first word of a legend phrase.
_SWATCH = {"green": "sw-green", "blue": "sw-blue", "red": "sw-red", "gray": "sw-gray", "blue-to-red": "bar-jet"}


def _layer(job_id: str, name: str, label: str, **kw: Any) -> dict[str, Any]:
    return {"url": f"/jobs/{job_id}/files/{name}", "name": name, "label": label, **kw}


def _volume_layers(job_id: str, r: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """NiiVue layers (background first) and the slice layout for a 3D result; none for 2D."""
    files = set(r.get("files") or [])
    if r.get("route") == "segment-3d" and {"volume.nii.gz", "liver_mask.nii.gz"} <= files:
        return [
            _layer(job_id, "volume.nii.gz", "gray = the uploaded volume", colormap="gray"),
            _layer(job_id, "liver_mask.nii.gz", "red = liver mask (MR/CT segmenter)", colormap="red",
                   opacity=0.45, cal_min=0.5, cal_max=1.0),
        ], "multiplanar"
    if r.get("route") == "mre" and {"magnitude.nii.gz", "stiffness_kpa.nii.gz", "liver_mask.nii.gz"} <= files:
        return [
            _layer(job_id, "magnitude.nii.gz", "gray = MRE magnitude image", colormap="gray"),
            _layer(job_id, "stiffness_kpa.nii.gz",
                   f"stiffness, 0-{MRE_VMAX_KPA:g} kPa (colour bar under the slices): blue = soft, red = stiff",
                   colormap="jet", opacity=0.6, cal_min=0.0, cal_max=MRE_VMAX_KPA, colorbarVisible=True),
            _layer(job_id, "liver_mask.nii.gz", "green = liver mask (segmenter); hidden at first so that the "
                   "stiffness inside the liver shows: tick liver_mask.nii.gz", colormap="green",
                   opacity=0.5, cal_min=0.5, cal_max=1.0, shown=False),
        ], "axial"
    return [], ""


def _legend(r: dict[str, Any], layers: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Legend rows ``{"swatch": css class, "text": ...}``: the viewer's layers, else the 2D overlay's."""
    if layers:
        rows = []
        for layer in layers:
            swatch = "bar-jet" if layer["colormap"] == "jet" else f"sw-{layer['colormap']}"
            rows.append({"swatch": swatch, "text": layer["label"]})
        return rows
    phrases = [p.strip() for p in str(r.get("overlay_legend") or "").split(";") if p.strip()]
    return [{"swatch": _SWATCH.get(p.split()[0], ""), "text": p} for p in phrases]


def _is_synthetic(r: dict[str, Any]) -> bool:
    acc = r.get("model_accuracy") or {}
    return bool(r.get("synthetic") or acc.get("synthetic"))


def job_context(job_id: str, r: dict[str, Any] | None) -> dict[str, Any]:
    """Template context for a finished job's result ``r`` (``{}`` when there is none)."""
    if not r:
        return {}
    layers, slice_type = _volume_layers(job_id, r)
    nv_layers = [{k: v for k, v in layer.items() if k not in ("label", "shown")} for layer in layers]
    return {
        "layers_json": json.dumps(nv_layers) if layers else "",
        "viewer_layers": layers,
        "slice_type": slice_type,
        "legend": _legend(r, layers),
        "accuracy": r.get("model_accuracy") or {},
        "synthetic": _is_synthetic(r),
    }


#: Shown on every finished job page: SYNTHETIC banner, legend, accuracy with its caveat.
CONTEXT_HTML = """{% if c.synthetic %}<p class="synthetic" id="synthetic">SYNTHETIC: this result comes from
synthetic data or from a model trained only on synthetic data; it says nothing about a real patient.</p>{% endif %}
{% if c.legend %}<h3>What the colours mean</h3><ul id="legend" class="legend">
{% for row in c.legend %}<li><span class="swatch {{ row.swatch }}"></span>{{ row.text }}</li>{% endfor %}</ul>{% endif %}
<h3>How accurate the model is</h3><div id="accuracy">
{% if c.accuracy %}<p><b>{{ c.accuracy.model }}</b>{% if c.accuracy.task %} ({{ c.accuracy.task }}){% endif %}:
measured {{ c.accuracy.figure }}{% if c.accuracy.source %} <small>(source: {{ c.accuracy.source }})</small>{% endif %}</p>
{% if c.accuracy.caveat %}<p class="caveat"><b>Caveat:</b> {{ c.accuracy.caveat }}</p>{% endif %}
{% else %}<p>No measured accuracy is recorded for the model of this result.</p>{% endif %}</div>"""

#: The NiiVue viewer of a 3D result (volume, liver mask and, for MRE, the stiffness map).
VOLUME_HTML = """{% if c.layers_json %}<h3>Volume viewer</h3>
<div class="nv-box"><canvas id="volume" class="nv-canvas" data-slice-type="{{ c.slice_type }}"
data-layers="{{ c.layers_json }}"></canvas></div>
<p><label>Overlay opacity <input type="range" data-opacity-for="volume" min="0" max="100" value="100"></label>
{% for layer in c.viewer_layers %}{% if not loop.first %}<label><input type="checkbox" data-layer-for="volume"
data-layer="{{ loop.index0 }}"{% if layer.shown is not sameas false %} checked{% endif %}> {{ layer.name }}</label> {% endif %}{% endfor %}</p>
<p><small>Click a slice to move the cross-hair; scroll to page through slices.</small></p>{% endif %}"""
