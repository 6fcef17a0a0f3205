"""training.trainer.fit: selection and early stopping on validation only, best weights restored, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from liverfib.training.trainer import fit


def _setup(seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer, list[tuple[torch.Tensor, torch.Tensor]]]:
    torch.manual_seed(seed)
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    return net, opt, [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)]


def _loss(net: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor], state: object) -> tuple[torch.Tensor, dict]:
    loss = torch.nn.functional.mse_loss(net(batch[0]), batch[1])
    return loss, {"loss": loss.item()}


def test_best_validation_weights_are_restored_and_patience_stops() -> None:
    net, opt, data = _setup()
    scores = iter([0.1, 0.9, 0.5, 0.4, 0.3, 0.2])  # best at epoch 2, then three worse ones
    seen: list[dict] = []

    def validate(net: torch.nn.Module, state: object) -> tuple[float, dict]:
        seen.append({k: v.clone() for k, v in net.state_dict().items()})
        s = next(scores)
        return s, {"val": s}

    state = fit(net, opt, _loss, lambda e: data, epochs=6, validate=validate, patience=2)
    assert state.best_score == 0.9 and state.best_step == 8  # 4 steps per epoch
    assert len(seen) == 4  # stopped after two validations without improvement
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, seen[1][k], rtol=0, atol=0)
    assert not net.training


def test_initial_score_is_kept_unless_beaten() -> None:
    net, opt, data = _setup()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    fit(net, opt, _loss, lambda e: data, epochs=2, validate=lambda n, s: (0.5, {}), initial_score=0.8)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, start[k], rtol=0, atol=0)


def test_step_validation_and_final_validation() -> None:
    net, opt, data = _setup()
    steps: list[int] = []
    state = fit(net, opt, _loss, lambda e: data[:3], epochs=1, validate=lambda n, s: (steps.append(s.step) or 0.0, {}),
                validate_every=2)
    assert steps == [2, 3] and state.step == 3  # every 2 steps, and once at the end


@pytest.mark.parametrize("split_at", [1, 2])
def test_resume_continues_to_the_same_weights(tmp_path: Path, split_at: int) -> None:
    net, opt, data = _setup()
    fit(net, opt, _loss, lambda e: data, epochs=3)
    straight = {k: v.clone() for k, v in net.state_dict().items()}

    path = tmp_path / "last.safetensors"
    net, opt, data = _setup()
    fit(net, opt, _loss, lambda e: data, epochs=split_at, resume=path, resume_key={"cfg": 1})
    net, opt, data = _setup()  # a fresh process: new net and optimiser, state read back from the file
    state = fit(net, opt, _loss, lambda e: data, epochs=3, resume=path, resume_key={"cfg": 1})
    assert state.step == 12
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, straight[k], rtol=0, atol=0)

    net, opt, data = _setup()  # another key: the file is not reused
    state = fit(net, opt, _loss, lambda e: data, epochs=1, resume=path, resume_key={"cfg": 2})
    assert state.step == 4
