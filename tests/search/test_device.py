"""The device path: --device / --amp, portable checkpoints, bf16 autocast; the CUDA tests run only with a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from search_cases import small_preset  # tiny on 8x8 digits, 3 candidates, 2 epochs

from jaqc.cli import main
from jaqc.core import JaqcError
from jaqc.device import autocast, check_amp, loader_options, model_device, resolve_device, to_cpu
from jaqc.search.jaq import JaqSearch, JaqSearchSettings
from jaqc.search.rundir import RunDir
from jaqc.search.runner import SearchRun

pytestmark = pytest.mark.usefixtures("one_thread")

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the errors of a machine without CUDA")


def test_resolve_device_names_and_errors() -> None:
    assert resolve_device("cpu") == resolve_device(" CPU ") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == resolve_device("auto").type == expected
    for bad in ("gpu", "tpu", "cuda:x"):
        with pytest.raises(JaqcError, match="expected cpu, cuda or cuda:N"):
            resolve_device(bad)


@no_cuda
def test_a_cuda_device_without_cuda_is_a_clear_error() -> None:
    for spec in ("cuda", "cuda:1"):
        with pytest.raises(JaqcError, match=rf"--device {spec}: no CUDA device is available \(torch .*\); use cpu"):
            resolve_device(spec)


def test_amp_modes_and_loader_options() -> None:
    assert check_amp("bf16") == "bf16"
    with pytest.raises(JaqcError, match="--amp 'fp16': expected one of off, bf16"):
        check_amp("fp16")
    with pytest.raises(JaqcError, match="search setting amp must be one of off, bf16, got 'fp8'"):
        JaqSearchSettings(amp="fp8")
    assert loader_options(torch.device("cpu")) == {"num_workers": 0}
    with autocast(torch.device("cpu"), "bf16"):
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "off"):
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype == torch.float32


def test_to_cpu_and_model_device() -> None:
    state = {"a": torch.ones(2), "b": [torch.zeros(1), (torch.ones(1), 3)], "c": "text"}
    moved = to_cpu(state)
    assert moved["c"] == "text" and moved["b"][1][1] == 3 and isinstance(moved["b"][1], tuple)
    assert torch.equal(moved["a"], state["a"])
    assert model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")


def test_bf16_search_steps_run_in_bfloat16_and_record_it(tmp_path: Path) -> None:
    """--amp bf16: the supernet's convolutions run in bfloat16 (on the CPU here); config.json records it."""
    preset = small_preset(amp="bf16")
    engine = JaqSearch(preset.supernet, preset.settings, steps_per_epoch=4)
    dtypes: set[torch.dtype] = set()
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: dtypes.add(out.dtype) if isinstance(module, torch.nn.Conv2d) else None
    )
    try:
        images, labels = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
        record = {**engine.weight_step(images, labels), **engine.arch_step(images, labels)}
    finally:
        hook.remove()
    assert dtypes == {torch.bfloat16}
    assert all(torch.isfinite(torch.tensor(record[k])) for k in ("w_loss", "a_loss", "e_hw"))
    assert all(p.dtype == torch.float32 for p in engine.supernet.parameters())  # autocast keeps float32 weights
    run = SearchRun(preset, tmp_path / "bf16", device="cpu")
    assert run.run(stop_after_steps=1, progress=False) is None
    config = RunDir.open(tmp_path / "bf16").read_config()
    assert config["preset"]["settings"]["amp"] == "bf16"


def test_checkpoints_hold_cpu_tensors_and_resume_with_an_explicit_device(tmp_path: Path) -> None:
    preset = small_preset()
    straight = SearchRun(preset, tmp_path / "straight", device="cpu").run(progress=False)
    assert straight is not None
    assert SearchRun(preset, tmp_path / "resumed", device="cpu").run(stop_after_steps=6, progress=False) is None
    state = RunDir.open(tmp_path / "resumed").load_checkpoint().state
    tensors = [t for t in _tensors(state)]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    resumed = SearchRun(preset, tmp_path / "resumed", resume=True, device="cpu").run(progress=False)
    assert resumed is not None
    assert resumed.summary["architecture"] == straight.summary["architecture"]
    assert resumed.summary["accelerator"] == straight.summary["accelerator"]


def _tensors(value):  # type: ignore[no-untyped-def]
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


@no_cuda
def test_cli_device_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "--preset", "tiny", "--run-dir", str(tmp_path / "r"), "--device", "cuda"]) == 2
    assert capsys.readouterr().err.startswith("error: --device cuda: no CUDA device is available")
    assert not (tmp_path / "r").exists()
    assert main(["search", "--method", "hqnas", "--run-dir", str(tmp_path / "h"), "--amp", "bf16"]) == 2
    assert capsys.readouterr().err.startswith("error: --amp bf16: --method hqnas trains in float32 only")
    assert not (tmp_path / "h").exists()
    assert main(["retrain", str(tmp_path / "h"), "--device", "tpu"]) == 2
    assert "error: " in capsys.readouterr().err


# --- CUDA: run by scripts/gpu_check.sh (pytest -m gpu) on a machine with a GPU ------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_search_steps_on_cuda_match_the_cpu(amp: str) -> None:
    """One weight step and one architecture step on the GPU and on the CPU from the same state: the same Gumbel
    draw (CPU generator), losses equal to float32 (bf16: to its precision)."""
    preset = small_preset(amp=amp)
    images, labels = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    records = []
    for device in ("cpu", "cuda"):
        engine = JaqSearch(preset.supernet, preset.settings, steps_per_epoch=4).to(device)
        records.append({**engine.weight_step(images, labels), **engine.arch_step(images, labels)})
        assert engine.supernet.arch.alpha.device.type == device
    tolerance = 1e-3 if amp == "off" else 5e-2
    for key in ("w_loss", "a_ce", "e_hw"):
        assert records[1][key] == pytest.approx(records[0][key], rel=tolerance), key


@pytest.mark.gpu
def test_a_run_resumes_across_devices(tmp_path: Path) -> None:
    """Checkpoints written on the GPU resume on the CPU and the reverse; each run finishes with its outputs."""
    preset = small_preset()
    for first, second in (("cuda", "cpu"), ("cpu", "cuda")):
        path = tmp_path / f"{first}-{second}"
        assert SearchRun(preset, path, device=first).run(stop_after_steps=6, progress=False) is None
        outcome = SearchRun(preset, path, resume=True, device=second).run(progress=False)
        assert outcome is not None and outcome.summary["architecture"]
        assert RunDir(path).finished
