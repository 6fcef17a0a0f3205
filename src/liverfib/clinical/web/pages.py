"""HTML pages of the viewer (Jinja templates, autoescaped) and its static files (script, style, the
NiiVue volume viewer bundle and its licences)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from liverfib.clinical.web.viewer import CONTEXT_HTML, VOLUME_FILES, VOLUME_HTML, job_context

__all__ = ["DOWNLOADS", "Pages"]

#: Files of a job folder that may be downloaded, with their media types.
DOWNLOADS = {
    "report.html": "text/html",
    "report.pdf": "application/pdf",
    "seg.dcm": "application/dicom",
    "sr.dcm": "application/dicom",
    "sc.dcm": "application/dicom",
    "result.json": "application/json",
    "image.png": "image/png",
    "overlay.png": "image/png",
    "overlay_layer.png": "image/png",
    "mre_map.png": "image/png",
    "mre.json": "application/json",
    "liver_mask_qc.png": "image/png",
    **{name: "application/gzip" for name in VOLUME_FILES},
}

_BASE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>liverfib</title>
{% if refresh %}<meta http-equiv="refresh" content="{{ refresh }}">{% endif %}
<link rel="stylesheet" href="/static/viewer.css"><script src="/static/viewer.js"></script>
{% if volume_viewer %}<script src="/static/niivue-viewer.js" defer></script>{% endif %}</head><body>
<p class="notice">liverfib: research use only, not for diagnosis.
{% if logout %}<form class="inline" action="/logout" method="post"><button type="submit">Log out</button></form>{% endif %}</p>
{{ body }}</body></html>"""

_INDEX = """<h1>liverfib</h1>
<form action="/upload" method="post" enctype="multipart/form-data">
<input type="file" name="file" required> <button type="submit">Upload image, DICOM, NIfTI volume or zip</button>
</form>
<h2>Jobs</h2><table id="jobs"><tr><th>job</th><th>name</th><th>origin</th><th>kind</th><th>status</th><th>stage</th><th>reason</th></tr>
{% for j in jobs %}<tr><td><a href="/jobs/{{ j.id }}">{{ j.id }}</a></td><td>{{ j.name or '' }}</td>
<td>{{ j.origin }}</td><td>{{ j.kind }}</td><td class="status">{{ j.status }}</td>
<td>{{ (j.result or {}).get('stage', '') }}</td><td>{{ j.error or '' }}</td></tr>
{% endfor %}</table>"""

_JOB = """<p><a href="/">&larr; jobs</a></p><h1>Job {{ j.id }}: {{ j.name or '' }}</h1>
<p>Status: <b id="status">{{ j.status }}</b> {% if j.error %}&mdash; {{ j.error }}{% endif %}</p>
{% if r and r.route == 'mre' %}
<h2>MR elastography: {{ '%.2f'|format(r.stiffness_kpa) }} kPa, stage {{ r.stage }}</h2>
<table>{% for k, v in r.mre.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
<p><img id="mremap" class="map" src="/jobs/{{ j.id }}/files/mre_map.png" alt="stiffness map with colour bar"></p>
""" + VOLUME_HTML + """
{% for n in r.notes %}<p><i>{{ n }}</i></p>{% endfor %}
<h3>Downloads</h3><ul>{% for f in r.files %}<li><a href="/jobs/{{ j.id }}/files/{{ f }}">{{ f }}</a></li>{% endfor %}</ul>
{% elif r and r.route == 'segment-3d' %}
<h2>Liver segmentation (MR/CT volume): {% if r.liver_volume_ml is not none %}liver {{ '%.1f'|format(r.liver_volume_ml) }} ml{% else %}no liver volume (voxel size unknown){% endif %}</h2>
<p>Volume {{ r.shape|join(' × ') }} voxels (slices × rows × columns){% if r.spacing_mm %}, voxel {{ r.spacing_mm|map('round', 2)|join(' × ') }} mm{% endif %}.</p>
""" + VOLUME_HTML + """
{% for n in r.notes %}<p><i>{{ n }}</i></p>{% endfor %}
<h3>Downloads</h3><ul>{% for f in r.files %}<li><a href="/jobs/{{ j.id }}/files/{{ f }}">{{ f }}</a></li>{% endfor %}</ul>
{% elif r %}
<h2>Stage {{ r.stage }}</h2>
<div class="stack"><img src="/jobs/{{ j.id }}/files/image.png" alt="image">
<img class="ov" id="overlay" src="/jobs/{{ j.id }}/files/overlay_layer.png" alt="overlay"></div>
<p><label>Overlay opacity <input type="range" id="opacity" min="0" max="100" value="60"></label></p>
<h3>Stage probabilities</h3>
<svg id="probchart" width="360" height="{{ 24 * (r.probabilities|length) + 10 }}" role="img" aria-label="stage probabilities">
{% for s, p in r.probabilities.items() %}
<text x="0" y="{{ 24 * loop.index0 + 18 }}">{{ s }}</text>
<rect x="30" y="{{ 24 * loop.index0 + 4 }}" width="{{ (p * 260)|round(1) }}" height="18" fill="#4a7bd0"></rect>
<text x="{{ 36 + (p * 260)|round(1) }}" y="{{ 24 * loop.index0 + 18 }}">{{ '%.2f'|format(p) }}</text>
{% endfor %}</svg>
<p>P(&ge;F2) {{ '%.2f'|format(r.p_ge_f2) }} &middot; P(&ge;F3) {{ '%.2f'|format(r.p_ge_f3) }} &middot; P(F4) {{ '%.2f'|format(r.p_f4) }}</p>
{% if r.warning %}<p><b>Warning:</b> {{ r.warning }}</p>{% endif %}
{% for n in r.notes %}<p><i>{{ n }}</i></p>{% endfor %}
<h3>Downloads</h3><ul>{% for f in downloads %}<li><a href="/jobs/{{ j.id }}/files/{{ f }}">{{ f }}</a></li>{% endfor %}</ul>
{% endif %}
{% if r %}""" + CONTEXT_HTML + """{% endif %}"""

_LOGIN = """<h1>liverfib login</h1>{% if failed %}<p>{{ failed }}</p>{% endif %}
<form action="/login" method="post"><input type="password" name="token" placeholder="access token" required>
<button type="submit">Log in</button></form>"""


def _static(name: str) -> bytes:
    return resources.files("liverfib.clinical").joinpath("static", name).read_bytes()



class Pages:
    """Renders a page template inside the common frame, and serves the viewer's static files."""

    def __init__(self) -> None:
        import jinja2

        self.env = jinja2.Environment(autoescape=True)
        self.base = self.env.from_string(_BASE)
        self.statics = {
            "viewer.js": (_static("viewer.js"), "text/javascript"),
            "viewer.css": (_static("viewer.css"), "text/css"),
            "niivue-viewer.js": (_static("niivue-viewer.js"), "text/javascript"),
            "NIIVUE-LICENSES.txt": (_static("NIIVUE-LICENSES.txt"), "text/plain; charset=utf-8"),
        }

    def login(self, failed: str = "", status: int = 200) -> Any:
        """The login form, with ``failed`` as the message above it."""
        return self._render(_LOGIN, failed=failed, status=status)

    def index(self, jobs: list[dict[str, Any]], refresh: int | None) -> Any:
        """The upload form and the job table."""
        return self._render(_INDEX, refresh=refresh, jobs=jobs, logout=True)

    def job(self, job: dict[str, Any], result: dict[str, Any] | None, downloads: list[str], refresh: int | None) -> Any:
        """One job: its status, and its result when done, with what its colours mean, the model's
        measured accuracy and, for 3D results, the volume viewer."""
        c = job_context(job["id"], result)
        return self._render(_JOB, refresh=refresh, j=job, r=result, c=c, downloads=downloads, logout=True,
                            volume_viewer=bool(c.get("layers_json")))

    def _render(self, template: str, refresh: int | None = None, status: int = 200, **ctx: Any) -> Any:
        """An ``HTMLResponse`` of ``template`` rendered with ``ctx``; ``refresh`` in seconds."""
        from fastapi.responses import HTMLResponse
        from markupsafe import Markup

        body = self.env.from_string(template).render(**ctx)
        html = self.base.render(body=Markup(body), refresh=refresh, logout=ctx.get("logout", False),
                                volume_viewer=ctx.get("volume_viewer", False))
        return HTMLResponse(html, status)

    def static(self, name: str) -> Any:
        """The static file ``name`` as a ``Response``; 404 for any other name."""
        from fastapi import HTTPException
        from fastapi.responses import Response

        if name not in self.statics:
            raise HTTPException(404, "not found")
        data, media = self.statics[name]
        return Response(data, media_type=media)
