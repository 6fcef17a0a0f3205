"""The web viewer (``liverfib serve``): upload an image, DICOM file or zip; list jobs; view a result; download files.

Security (see SECURITY.md for the threat model and the tests):

* every page and API call needs ``Authorization: Bearer <LIVERFIB_TOKEN>`` or a session cookie
  from ``POST /login`` (random, HttpOnly, SameSite=Strict, Secure over HTTPS, kept server-side,
  expires after ``session_ttl_s``, revoked by ``POST /logout``); otherwise 401. Only ``/login``
  and the static files are open. Repeated wrong tokens from one client (login form or
  Bearer header) get 429 with Retry-After for ``login_window_s``;
* request bodies above ``max_upload_bytes`` get 413 (checked on Content-Length and while
  streaming, so a chunked upload cannot slip past); uploads are streamed to disk, never held whole
  in memory; an upload is refused (429) before its body is read when ``max_queued_jobs`` jobs wait;
* uploads are recognised by content (magic bytes), never by name or declared type: 415 otherwise;
  every image (and NIfTI volume) is decoded before the 201: a truncated or corrupt image is a 400, one above
  ``max_image_pixels`` (decompression bomb) a 413, a DICOM file without pixel data a 422;
* DICOM uploads are de-identified before they are stored; the API never returns server paths,
  patient names, IDs or dates;
* every response, errors included, carries the security headers; the CSP allows no inline script
  or style (the viewer's script and style are static files);
* zip files: members with absolute paths, ``..``, drive letters or symlinks are refused (zip-slip),
  as are encrypted members, too many members, a total or per-member size above the limits, or a
  compression ratio above ``max_zip_ratio`` (zip bomb). Sizes are counted while extracting, so a
  lying header does not help. Any refusal is a 4xx with the reason; nothing is half-extracted.

Jobs are queued in the :class:`~liverfib.clinical.jobs.JobStore`; the worker runs them.

Modules: ``config`` (settings), ``auth`` (token, sessions, throttle), ``middleware`` (body limit,
security headers), ``uploads`` (streaming, sniffing, queuing), ``validation`` (image decoding),
``archive`` (safe zip extraction), ``volume`` (NIfTI uploads for 3D segmentation), ``pages``
(HTML), ``viewer`` (what a job page shows around a result: NiiVue volume viewer, colour legend,
measured accuracy, SYNTHETIC banner), ``routes`` and ``app`` (the factory).
"""

from __future__ import annotations

from liverfib.clinical.web.app import create_app
from liverfib.clinical.web.archive import safe_extract_zip
from liverfib.clinical.web.auth import COOKIE
from liverfib.clinical.web.config import UploadRejected, WebConfig
from liverfib.clinical.web.uploads import sniff_upload

__all__ = ["COOKIE", "WebConfig", "UploadRejected", "create_app", "safe_extract_zip", "sniff_upload"]
