"""The one progress reporter (issue 20.4): a moving bar on a terminal, a line every interval otherwise."""

from __future__ import annotations

import io
import time

from liverfib.progress import Progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_logs_a_line_per_interval_with_metrics() -> None:
    stream = io.StringIO()
    with Progress(4, "train", "epoch", interval_s=0.05, stream=stream) as bar:
        for epoch in range(4):
            time.sleep(0.07)
            bar.update(1, loss=1.0 / (epoch + 1), val_acc=0.5)
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 4
    assert any(line.startswith("train: 2/4 epoch (50%) running") for line in lines)  # it moves
    assert any("loss=0.5" in line and "val_acc=0.5" in line for line in lines)  # live metrics
    assert lines[-1].startswith("train: 4/4 epoch (100%) done") and "loss=0.25" in lines[-1]


def test_heartbeat_while_one_step_runs_long() -> None:
    """A slow step (model loading, one long epoch) still gets lines: the job is never silent."""
    stream = io.StringIO()
    bar = Progress(2, "features", "batch", interval_s=0.05, stream=stream)
    time.sleep(1.3)  # no update() at all
    bar.close()
    assert stream.getvalue().count("features: 0/2 batch (0%) running") >= 1


def test_short_job_stays_quiet_off_terminal() -> None:
    stream = io.StringIO()
    with Progress(3, "predict", "img", interval_s=10, stream=stream) as bar:
        bar.update(3)
    assert stream.getvalue() == ""


def test_terminal_bar_moves_and_shows_metrics() -> None:
    stream = _Tty()
    with Progress(10, "train", "step", stream=stream) as bar:
        for _ in range(10):
            bar.update(1, loss=0.25)
    out = stream.getvalue()
    assert "train" in out and "10/10" in out and "loss=0.25" in out


def test_pipeline_progress_callback_uses_it() -> None:
    from liverfib.pipeline._common import progress_bar

    update = progress_bar("audit")
    update(1, 2)
    update(2, 2)  # closes without error
