"""Who may pass: the Bearer token or a server-side session, with a throttle on wrong tokens."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from typing import Any

from fastapi import HTTPException, Request  # module level: FastAPI resolves annotations by name

from liverfib.clinical.jobs import JobStore
from liverfib.clinical.web.config import WebConfig

__all__ = ["COOKIE", "Gate", "client_of"]

COOKIE = "liverfib_session"


class _Throttle:
    """Wrong tokens per client in a sliding window (OWASP: limit failed authentication attempts)."""

    def __init__(self, max_failures: int, window_s: float, max_clients: int = 10_000) -> None:
        self.max_failures, self.window_s, self.max_clients = max_failures, window_s, max_clients
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0 = now)."""
        now = time.monotonic()
        with self._lock:
            times = self._fails.get(client)
            if not times:
                return 0.0
            while times and now - times[0] > self.window_s:
                times.popleft()
            if len(times) < self.max_failures:
                return 0.0
            return max(0.0, self.window_s - (now - times[0]))

    def fail(self, client: str) -> None:
        with self._lock:
            self._fails.setdefault(client, deque(maxlen=self.max_failures)).append(time.monotonic())
            self._fails.move_to_end(client)
            while len(self._fails) > self.max_clients:
                self._fails.popitem(last=False)

    def reset(self, client: str) -> None:
        with self._lock:
            self._fails.pop(client, None)


class _Sessions:
    """Server-side sessions: random ids that expire after ``ttl_s`` and can be revoked (a restart
    revokes all of them)."""

    def __init__(self, ttl_s: float, max_sessions: int = 1000) -> None:
        self.ttl_s, self.max_sessions = ttl_s, max_sessions
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def new(self) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._expiry[sid] = time.monotonic() + self.ttl_s
            while len(self._expiry) > self.max_sessions:
                self._expiry.popitem(last=False)  # the oldest login goes first
        return sid

    def valid(self, sid: str) -> bool:
        if not sid:
            return False
        with self._lock:
            expiry = self._expiry.get(sid)
            if expiry is None:
                return False
            if time.monotonic() > expiry:
                del self._expiry[sid]
                return False
            return True

    def revoke(self, sid: str) -> None:
        with self._lock:
            self._expiry.pop(sid, None)


def client_of(scope_or_request: Any) -> str:
    """The client's address from an ASGI scope or a request (``"unknown"`` when absent)."""
    client = scope_or_request.get("client") if isinstance(scope_or_request, dict) else scope_or_request.client
    return str(client[0]) if client else "unknown"


class Gate:
    """Checks every request: ``Authorization: Bearer <token>`` (constant-time compare) or a valid
    session cookie; repeated wrong tokens from one client get 429 with Retry-After."""

    def __init__(self, cfg: WebConfig, store: JobStore) -> None:
        self.cfg, self.store = cfg, store
        self.sessions = _Sessions(cfg.session_ttl_s)
        self.throttle = _Throttle(cfg.login_max_failures, cfg.login_window_s)

    def too_many(self, client: str) -> HTTPException | None:
        """The 429 to answer while ``client`` is throttled, else None."""
        wait = self.throttle.retry_after(client)
        if wait <= 0:
            return None
        return HTTPException(429, f"too many wrong tokens; try again in {wait:.0f} s",
                             headers={"Retry-After": str(max(1, round(wait)))})

    def check(self, authorization: str, cookie: str, client: str) -> HTTPException | None:
        """None when authorised, else the error to answer (401, or 429 after repeated failures)."""
        if authorization.lower().startswith("bearer "):
            refused = self.too_many(client)
            if refused is not None:
                return refused
            if self.token_matches(authorization[7:].strip()):
                return None
            self.throttle.fail(client)
            return HTTPException(401, "wrong token", headers={"WWW-Authenticate": "Bearer"})
        if self.sessions.valid(cookie):
            return None
        return HTTPException(401, "authentication required: Authorization: Bearer <token>, or log in at /login",
                             headers={"WWW-Authenticate": "Bearer"})

    def token_matches(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.cfg.token.encode())

    def authorised(self, request: Request) -> None:
        """FastAPI dependency: raises the 401/429 of :meth:`check`."""
        error = self.check(request.headers.get("authorization", ""), request.cookies.get(COOKIE, ""), client_of(request))
        if error is not None:
            raise error

    def precheck(self, scope: dict[str, Any]) -> tuple[int, str, dict[str, str]] | None:
        """Before an upload's body is read: authorised, and room in the queue."""
        from http.cookies import SimpleCookie

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is simply no session
            jar = SimpleCookie()
        cookie = jar[COOKIE].value if COOKIE in jar else ""
        error = self.check(headers.get("authorization", ""), cookie, client_of(scope))
        if error is not None:
            return error.status_code, str(error.detail), dict(error.headers or {})
        if self.store.count_queued() >= self.cfg.max_queued_jobs:
            return 429, f"the job queue is full ({self.cfg.max_queued_jobs} waiting); try again later", {"Retry-After": "30"}
        return None
