"""HTML page for an audit: tables plus a montage of the biggest near-duplicate clusters."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from liverfib.io.atomic import atomic_write

__all__ = ["write_audit_html"]


def _thumb_png(path: Path, side: int = 120) -> str | None:
    from PIL import Image as PILImage

    from liverfib.errors import LiverfibError
    from liverfib.io import read_image

    try:
        arr = read_image(path).array
    except LiverfibError:
        return None
    if arr.dtype != np.uint8:
        arr = np.clip(arr / max(float(arr.max()), 1e-6) * 255, 0, 255).astype(np.uint8)
    pil = PILImage.fromarray(arr)
    pil.thumbnail((side, side))
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def write_audit_html(
    summary: dict[str, Any], data_dir: Path, out: Path, *, n_clusters: int = 8, per_cluster: int = 6
) -> Path:
    """Write ``out`` (atomically) from an audit summary."""
    esc = html.escape
    parts = [
        "<!doctype html><meta charset='utf-8'><title>liverfib audit</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{margin:2px}</style>",
        f"<h1>Dataset audit</h1><p><b>{esc(summary['verdict'])}</b></p>",
        "<h2>Labels</h2><table><tr><th>label</th><th>files</th><th>distinct images</th><th>clusters</th></tr>",
    ]
    for lab, d in summary["labels"].items():
        parts.append(
            f"<tr><td>{esc(lab)}</td><td>{d['files']}</td><td>{d['distinct_images']}</td>"
            f"<td>{d['unique_clusters']}</td></tr>"
        )
    parts.append(
        "</table><h2>Sources (distinct images per label)</h2><table><tr><th>source</th><th>fingerprint</th>"
    )
    labels = list(summary["labels"])
    parts += [f"<th>{esc(lab)}</th>" for lab in labels] + ["</tr>"]
    for s in summary["sources"]:
        cells = "".join(f"<td>{s['distinct_per_label'].get(lab, 0)}</td>" for lab in labels)
        parts.append(f"<tr><td>{esc(s['source'])}</td><td>{esc(s['fingerprint'])}</td>{cells}</tr>")
    parts.append(f"</table><p>Cramér's V (source vs label): {summary['source_label_cramers_v']:.3f}</p>")
    parts.append(
        f"<h2>Largest near-duplicate clusters (threshold {summary['near_duplicate_threshold']})</h2>"
    )
    for c in summary["near_duplicate_clusters"][:n_clusters]:
        parts.append(
            f"<h3>{esc(c['cluster'])}: {c['n_distinct']} distinct images, labels {esc(', '.join(c['labels']))}</h3><div>"
        )
        for rel in c["files"][:per_cluster]:
            b64 = _thumb_png(data_dir / rel)
            if b64:
                parts.append(f"<img title='{esc(rel)}' src='data:image/png;base64,{b64}'>")
        parts.append("</div>")
    if summary["unreadable"]:
        parts.append("<h2>Unreadable files</h2><ul>")
        parts += [f"<li>{esc(u['error'])}</li>" for u in summary["unreadable"]]
        parts.append("</ul>")
    atomic_write(out, data="\n".join(parts))
    return out
