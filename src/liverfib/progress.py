"""The one progress reporter of liverfib (every long job uses it).

On a terminal it is a tqdm bar that moves, with live metrics (``loss=0.41 val_acc=0.62``) for
training. When stderr is not a terminal (a log file, a CI job, ``nohup``) it writes one plain line
every ``interval_s`` seconds (10 s by default, ``$LIVERFIB_PROGRESS_INTERVAL`` overrides) and a
last line when the job ends, so a long job is never silent.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

__all__ = ["Progress", "progress_bar"]


def _fmt_metrics(metrics: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


class Progress:
    """Count ``done`` of ``total`` steps; ``update(n, **metrics)``; ``close()`` (or use ``with``).

    ``total`` may be ``None`` (unknown). ``stream`` defaults to ``sys.stderr``.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        *,
        interval_s: float | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done = 0
        self.metrics: dict[str, Any] = {}
        self.stream = stream if stream is not None else sys.stderr
        env = os.environ.get("LIVERFIB_PROGRESS_INTERVAL")
        self.interval_s = interval_s if interval_s is not None else float(env) if env else 10.0
        self._start = self._last = time.monotonic()
        self._closed = False
        self._bar = None
        isatty = getattr(self.stream, "isatty", lambda: False)()
        if isatty:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=False, mininterval=0.5,
                             dynamic_ncols=True)
        else:  # a heartbeat: one line every interval even while one step runs long
            import threading

            self._stop = threading.Event()
            threading.Thread(target=self._heartbeat, name=f"progress-{desc}", daemon=True).start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(min(1.0, self.interval_s)):
            if time.monotonic() - self._last >= self.interval_s:
                self._log()

    # ------------------------------------------------------------------ updates
    def update(self, n: int = 1, **metrics: Any) -> None:
        """Advance by ``n`` steps; ``metrics`` (e.g. ``loss=0.4``) are shown beside the count."""
        self.done += n
        if metrics:
            self.metrics.update(metrics)
        if self._bar is not None:
            if metrics:
                self._bar.set_postfix_str(_fmt_metrics(self.metrics), refresh=False)
            self._bar.update(n)
            if self.total is not None and self.done >= self.total:
                self._bar.refresh()  # the last state is shown even within mininterval
        elif time.monotonic() - self._last >= self.interval_s:
            self._log()

    def set(self, done: int, total: int | None = None, **metrics: Any) -> None:
        """Jump to ``done`` (of ``total`` when it changes)."""
        if total is not None and total != self.total:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
        self.update(done - self.done, **metrics)

    def _log(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self._start
        self._last = time.monotonic()
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        eta = ""
        if not final and self.total and self.done:
            eta = f", ~{elapsed * (self.total - self.done) / self.done:.0f} s left"
        extra = f"  {_fmt_metrics(self.metrics)}" if self.metrics else ""
        state = "done" if final else "running"
        print(f"{self.desc}: {count} {self.unit}{pct} {state}, {elapsed:.0f} s{eta}{extra}",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            return
        self._stop.set()
        if time.monotonic() - self._start >= self.interval_s:
            self._log(final=True)  # a job long enough to have logged gets a closing line

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(total: int | None, desc: str, unit: str = "it", **kwargs: Any) -> Progress:
    """Shorthand for :class:`Progress` (``total`` steps of ``unit``)."""
    return Progress(total, desc, unit, **kwargs)
