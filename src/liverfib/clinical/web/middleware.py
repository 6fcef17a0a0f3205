"""ASGI middleware: the request-body limit, the upload gate and the security headers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException

__all__ = ["BodyLimit"]


class _TooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body parser passes it on as 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"upload larger than {max_bytes} bytes; refused")


#: Sent with every response (pure ASGI, so that no task group wraps the body stream).
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"cache-control", b"no-store"),
]
_UPLOAD_PATHS = ("/api/upload", "/upload")


class BodyLimit:
    """ASGI middleware: 413 for bodies above ``max_bytes`` (Content-Length or streamed count); adds
    the security headers to every response. ``precheck(scope)`` may refuse an upload before its
    body is read: it returns ``(status, detail, headers)`` or ``None``."""

    def __init__(
        self,
        app: Any,
        max_bytes: int,
        precheck: Callable[[dict[str, Any]], tuple[int, str, dict[str, str]] | None] | None = None,
    ) -> None:
        self.app, self.max_bytes, self.precheck = app, max_bytes, precheck

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.precheck is not None and scope.get("method") == "POST" and scope.get("path") in _UPLOAD_PATHS:
            refused = self.precheck(scope)
            if refused is not None:
                status, detail, extra = refused
                await _send_json(send, status, {"detail": detail}, extra)
                return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _send_json(send, 413, {"detail": f"upload larger than {self.max_bytes} bytes; refused"})
            return
        seen = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS]}
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, {"detail": f"upload larger than {self.max_bytes} bytes; refused"})


async def _send_json(send: Any, status: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *_SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": data})

