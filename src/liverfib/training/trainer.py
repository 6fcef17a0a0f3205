"""The one training loop of liverfib: ``fit()`` with hooks, like MONAI's SupervisedTrainer + handlers.

Every trainer (US staging fine-tuning, US/CAM segmentation, MRE, MRI segmentation, MRI staging) is
a configuration of :func:`fit`: what differs between them is the batches, the loss (custom terms,
such as the CAM-in-liver regulariser, live in ``loss_fn``), the validation score and the hooks.

``fit`` runs ``epochs`` epochs; epoch ``e`` trains on the batches ``batches(e)`` yields (one step
each: forward in ``loss_fn``, backward, optimiser and scheduler step). Model selection and early
stopping look at the **validation** score only (``validate(net, state)``, run every ``validate_every``
steps and at each epoch's end); the best weights are restored at the end. With ``resume`` set, the
state after each epoch is written there (safetensors, no pickle) and a later call with the same
``resume_key`` continues from it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FitState", "fit"]

#: a validation result: ``(score, logs)``; higher scores are better (tuples compare in order)
Validation = tuple[Any, dict[str, Any]]


@dataclass
class FitState:
    """What the loop knows; hooks read it and may set ``stop``."""

    net: Any
    epoch: int = 0  # 0-based epoch being trained
    step: int = 0  # steps done (all epochs)
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per step: loss terms, seconds
    best_score: Any = None
    best_step: int = 0
    best_state: dict[str, Any] | None = None
    stale: int = 0  # validations since the last improvement
    validated_step: int = -1
    stop: bool = False
    t0: float = field(default_factory=time.time)

    @property
    def seconds(self) -> float:
        return time.time() - self.t0


def fit(
    net: Any,
    optimizer: Any,
    loss_fn: Callable[[Any, Any, FitState], tuple[Any, dict[str, float]]],
    batches: Callable[[int], Iterable[Any]],
    *,
    epochs: int = 1,
    scheduler: Any = None,
    scheduler_per: str = "step",
    validate: Callable[[Any, FitState], Validation] | None = None,
    validate_every: int | None = None,
    initial_score: Any = None,
    patience: int | None = None,
    restore_best: bool = True,
    amp: bool = False,
    device: str = "cpu",
    time_limit_s: float | None = None,
    train_mode: Callable[[Any], None] | None = None,
    after_step: Sequence[Callable[[FitState], None]] = (),
    after_validation: Sequence[Callable[[FitState, dict[str, Any]], None]] = (),
    after_epoch: Sequence[Callable[[FitState, dict[str, Any]], None]] = (),
    resume: Path | None = None,
    resume_key: Any = None,
    generators: Sequence[Any] = (),
) -> FitState:
    """Train ``net`` in place and return the final :class:`FitState` (``net`` holds the best weights
    when ``validate`` is given and ``restore_best``; else the last ones), in eval mode.

    ``loss_fn(net, batch, state) -> (loss, logs)``; ``logs`` (floats) go into the step's row.
    ``validate(net, state) -> (score, logs)``: higher is better; only a strictly better score moves the
    best checkpoint. ``initial_score``: the score of the starting weights (kept unless beaten).
    ``patience``: stop after that many validations without improvement. ``train_mode(net)`` puts
    the net in training mode (default ``net.train()``; e.g. keep BatchNorm frozen). ``amp``: CUDA
    mixed precision with a grad scaler. ``generators``: torch Generators whose state the resume
    file keeps (samplers), so a resumed run draws the same batches.
    """
    import torch

    if scheduler_per not in ("step", "epoch"):
        raise ValueError(f"scheduler_per must be 'step' or 'epoch', got {scheduler_per!r}")
    dev = torch.device(device)
    use_amp = amp and dev.type == "cuda"
    state = FitState(net=net, best_score=initial_score, best_state=_cpu_copy(net) if validate is not None else None)
    start_epoch = _resume(resume, resume_key, state, optimizer, scheduler, generators) if resume else 0
    loop = _Loop(
        state, optimizer, loss_fn, dev, use_amp, torch.amp.GradScaler("cuda", enabled=use_amp), scheduler,
        scheduler_per, validate, validate_every, patience, time_limit_s, train_mode or (lambda n: n.train()),
        after_step, after_validation, after_epoch,
    )
    for epoch in range(start_epoch, epochs):
        loop.run_epoch(epoch, batches(epoch), last_epoch=epoch == epochs - 1)
        if resume:
            _save_resume(resume, resume_key, state, optimizer, scheduler, generators)
        if state.stop:
            break
    if validate is not None and restore_best and state.best_state is not None:
        net.load_state_dict(state.best_state)
    net.eval()
    return state


@dataclass
class _Loop:
    """The settings of one :func:`fit` call and the three things its loop does: step, validate, epoch."""

    state: FitState
    optimizer: Any
    loss_fn: Callable[[Any, Any, FitState], tuple[Any, dict[str, float]]]
    dev: Any
    use_amp: bool
    scaler: Any
    scheduler: Any
    scheduler_per: str
    validate: Callable[[Any, FitState], Validation] | None
    validate_every: int | None
    patience: int | None
    time_limit_s: float | None
    set_train: Callable[[Any], None]
    after_step: Sequence[Callable[[FitState], None]]
    after_validation: Sequence[Callable[[FitState, dict[str, Any]], None]]
    after_epoch: Sequence[Callable[[FitState, dict[str, Any]], None]]

    def train_step(self, batch: Any) -> None:
        """Forward in ``loss_fn``, backward, optimiser (and per-step scheduler) step, log row, hooks."""
        import torch

        state, net = self.state, self.state.net
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.dev.type, enabled=self.use_amp):
            loss, logs = self.loss_fn(net, batch, state)
        self.scaler.scale(loss).backward()  # the one backward pass of liverfib
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None and self.scheduler_per == "step":
            self.scheduler.step()
        state.step += 1
        state.rows.append({"step": state.step, "epoch": state.epoch + 1, **logs, "seconds": round(state.seconds, 3)})
        for hook in self.after_step:
            hook(state)

    def run_validation(self) -> dict[str, Any]:
        """Score the net on validation; keep its weights when strictly better; early stopping."""
        state, net = self.state, self.state.net
        assert self.validate is not None
        score, logs = self.validate(net, state)
        state.validated_step = state.step
        if state.rows:
            state.rows[-1].update(logs)
        if state.best_score is None or score > state.best_score:
            state.best_score, state.best_step, state.stale = score, state.step, 0
            state.best_state = _cpu_copy(net)
        else:
            state.stale += 1
        if self.patience is not None and state.stale >= self.patience:
            state.stop = True
        for hook in self.after_validation:
            hook(state, logs)
        self.set_train(net)
        return logs

    def run_epoch(self, epoch: int, batches: Iterable[Any], *, last_epoch: bool) -> None:
        """One epoch: a step per batch (validating every ``validate_every`` steps), then epoch hooks."""
        state = self.state
        state.epoch = epoch
        self.set_train(state.net)
        for batch in batches:
            self.train_step(batch)
            timed_out = self.time_limit_s is not None and state.seconds > self.time_limit_s
            if self.validate is not None and self.validate_every and state.step % self.validate_every == 0:
                self.run_validation()
            if timed_out:
                state.stop = True
            if state.stop:
                break
        if self.scheduler is not None and self.scheduler_per == "epoch":
            self.scheduler.step()
        last = state.stop or last_epoch
        epoch_logs: dict[str, Any] = {}
        if self.validate is not None and state.validated_step != state.step and (not self.validate_every or last):
            epoch_logs = self.run_validation()
        for hook in self.after_epoch:
            hook(state, epoch_logs)


def _cpu_copy(net: Any) -> dict[str, Any]:
    return {k: v.detach().cpu().clone() for k, v in copy.copy(net.state_dict()).items()}


def _save_resume(path: Path, key: Any, state: FitState, optimizer: Any, scheduler: Any, generators: Sequence[Any]) -> None:
    from liverfib.training.resume import write_resume_state

    write_resume_state(path, {
        "key": key, "epoch": state.epoch, "step": state.step, "net": state.net.state_dict(),
        "opt": optimizer.state_dict(), "sched": scheduler.state_dict() if scheduler is not None else None,
        "gens": [g.get_state() for g in generators], "best_score": state.best_score, "best_step": state.best_step,
        "best": state.best_state, "stale": state.stale,
    })


def _resume(path: Path, key: Any, state: FitState, optimizer: Any, scheduler: Any, generators: Sequence[Any]) -> int:
    """Restore ``path`` when it was written with the same ``key``; returns the epoch to start at."""
    from liverfib.training.resume import read_resume_state

    if not Path(path).is_file():
        return 0
    saved = read_resume_state(path)
    if saved.get("key") != key:
        return 0
    state.net.load_state_dict(saved["net"])
    optimizer.load_state_dict(saved["opt"])
    if scheduler is not None and saved.get("sched") is not None:
        scheduler.load_state_dict(saved["sched"])
    for g, s in zip(generators, saved["gens"], strict=True):
        g.set_state(s)
    state.step, state.best_score, state.best_step = saved["step"], saved["best_score"], saved["best_step"]
    state.best_state, state.stale = saved["best"], saved["stale"]
    return int(saved["epoch"]) + 1
