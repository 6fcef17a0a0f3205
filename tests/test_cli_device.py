"""``--device`` on every command that runs a model (issue 20 item 6): one vocabulary (cpu | cuda |
auto), checked before any model loads, a one-line error when it cannot be honoured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liverfib.cli import app

DEMO = Path(__file__).resolve().parents[1] / "demo" / "us"

#: Every command that runs a model, with arguments that would get it going.
MODEL_COMMANDS: dict[str, list[str]] = {
    "predict": ["predict", str(DEMO / "F0_a1027.jpg")],
    "evaluate": ["evaluate", "--model", "default", "--data", str(DEMO)],
    "train": ["train", "--data", "d", "--split", "s.csv", "-o", "o"],
    "explain": ["explain", str(DEMO), "-o", "o"],
    "pseudo-masks": ["pseudo-masks", "--data", "d", "-o", "o"],
    "segment": ["segment", str(DEMO), "-o", "o"],
    "train-seg": ["train-seg", "--task", "us-liver", "--data", "d", "-o", "o"],
    "mre": ["mre", "exam"],
    "predict-mri": ["predict-mri", "scan.nii.gz"],
    "train-mri": ["train-mri", "--data", "d", "-o", "o"],
    "radiomics deep-features": ["radiomics", "deep-features", "-i", str(DEMO), "-o", "f.parquet"],
    "batch": ["batch", str(DEMO), "--task", "us-staging", "-o", "o"],
    "report": ["report", str(DEMO / "F0_a1027.jpg"), "-o", "o"],
}


def test_every_model_command_offers_device() -> None:
    runner = CliRunner()
    for name in MODEL_COMMANDS:
        text = runner.invoke(app, [*name.split(), "--help"], env={"COLUMNS": "200"}).output
        assert "--device" in text and "cpu | cuda | auto" in text, name


def test_unknown_device_is_one_line_before_any_model_loads(tmp_path: Path) -> None:
    """All commands in one fresh interpreter: each refuses --device gpu with one line, exit 2, and
    torch is never imported (so no model was loaded)."""
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from liverfib.cli import app\n"
        "runner, out = CliRunner(), {}\n"
        f"for name, args in {MODEL_COMMANDS!r}.items():\n"
        "    res = runner.invoke(app, [*args, '--device', 'gpu'])\n"
        "    out[name] = [res.exit_code, res.output, 'torch' in sys.modules]\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name, (rc, output, torch_loaded) in json.loads(proc.stdout.strip().splitlines()[-1]).items():
        assert rc == 2, (name, output)
        assert output.strip().splitlines() == [
            "error: Unknown --device 'gpu'. Valid choices: auto, cpu, cuda. Did you mean 'cpu'?"], (name, output)
        assert not torch_loaded, name


@pytest.fixture
def cuda(monkeypatch: pytest.MonkeyPatch):
    """Set whether a CUDA device is 'available', and make any model load fail the test."""
    import liverfib.api._device as device
    import liverfib.inference.predictor as predictor

    def no_model(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a model was loaded before --device was checked")

    monkeypatch.setattr(predictor, "load_predictor", no_model)

    def set_available(available: bool) -> None:
        monkeypatch.setattr(device, "_cuda_available", lambda: available)

    return set_available


@pytest.mark.parametrize("name", ["predict", "segment", "mre", "batch", "train-seg"])
def test_cuda_without_a_gpu_is_one_line(name: str, cuda, tmp_path: Path, monkeypatch) -> None:
    cuda(False)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, [*MODEL_COMMANDS[name], "--device", "cuda"])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [
        "error: --device cuda: no CUDA device is available (torch.cuda.is_available() is False); "
        "use --device cpu or --device auto"]


def test_cuda_on_a_cpu_only_command_is_refused_not_ignored(cuda, tmp_path: Path, monkeypatch) -> None:
    cuda(True)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, [*MODEL_COMMANDS["predict"], "--device", "cuda"])
    assert res.exit_code == 2
    assert "'predict' runs on the CPU only" in res.output and len(res.output.strip().splitlines()) == 1


@pytest.mark.parametrize(("asked", "available", "runs_on"), [
    ("auto", True, "cuda"), ("auto", False, "cpu"), ("cuda", True, "cuda"), ("cpu", True, "cpu")])
def test_train_gets_the_resolved_device(asked: str, available: bool, runs_on: str, cuda, monkeypatch) -> None:
    import liverfib.pipeline.staging as staging

    cuda(available)
    seen = {}

    def fake_run_train(*args, device, **kwargs):  # type: ignore[no-untyped-def]
        seen["device"] = device
        return {}, "trained"

    monkeypatch.setattr(staging, "run_train", fake_run_train)
    res = CliRunner().invoke(app, [*MODEL_COMMANDS["train"], "--device", asked])
    assert res.exit_code == 0, res.output
    assert seen == {"device": runs_on}


def test_device_cpu_and_auto_run(tmp_path: Path) -> None:
    import liverfib

    plain = liverfib.predict(DEMO / "F0_a1027.jpg")
    for device in ("cpu", "auto"):
        result = liverfib.predict(DEMO / "F0_a1027.jpg", device=device)
        assert result.predictions == plain.predictions
    res = CliRunner().invoke(app, [*MODEL_COMMANDS["predict"], "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["predictions"][0]["stage"] == plain.predictions[0].stage
