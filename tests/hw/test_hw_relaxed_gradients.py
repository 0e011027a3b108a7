"""The cost model in relaxed mode: same numbers at integer points, finite gradients to the accelerator."""

from __future__ import annotations

import pytest
import torch
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.mapping import Mapping

from jaqc.hw.model.cost_model import evaluate
from jaqc.hw.model.problem import ConvProblem
from jaqc.hw.model.tensors import HardwareTensors, MappingTensors, ProblemTensors
from jaqc.hw.reference.workloads import fbnet_cifar_subnet

FIELDS = ("pe_rows", "pe_cols", "wbuf_bytes", "ibuf_bytes", "obuf_bytes", "dram_bits_per_cycle")


def _subnet_batch(dataflow: str):
    layers = fbnet_cifar_subnet()
    mappings = [
        Mapping(tile=[1, min(4, p.out_w), min(4, p.out_h), min(16, p.group_in_channels), min(32, p.group_out_channels)],
                loop_order=["B", "OC", "IC", "OH", "OW"])
        for p in layers
    ]  # fmt: skip
    accelerator = AcceleratorConfig(pe_rows=12, pe_cols=20, wbuf_kb=240, ibuf_kb=96, obuf_kb=160, dataflow=dataflow)
    return (
        ProblemTensors.from_problems(layers),
        HardwareTensors.from_accelerators([accelerator] * len(layers)),
        MappingTensors.from_mappings(mappings),
    )


def _relaxed(hardware: HardwareTensors, offset: float) -> tuple[HardwareTensors, list[torch.Tensor]]:
    leaves = [(getattr(hardware, f)[:1] + offset).clone().requires_grad_(True) for f in FIELDS]
    fields = {f: leaf.expand_as(getattr(hardware, f)) for f, leaf in zip(FIELDS, leaves, strict=True)}
    return HardwareTensors(**fields, freq_mhz=hardware.freq_mhz, dataflow=hardware.dataflow), leaves


MODELS = ["simulator", "deployment"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dataflow", ["WS", "OS", "RS"])
def test_relaxed_mode_equals_discrete_at_integer_points(dataflow: str, model: str) -> None:
    problem, hardware, mapping = _subnet_batch(dataflow)
    exact = evaluate(problem, hardware, mapping, hw_model=model)
    relaxed_hw, _ = _relaxed(hardware, 0.0)
    relaxed = evaluate(problem, relaxed_hw, mapping, relaxed=True, hw_model=model)
    for name in ("total_cycles", "stall_cycles", "dram_read_bits", "energy_total", "edap"):
        assert torch.equal(getattr(relaxed, name).detach(), getattr(exact, name)), name
    assert torch.equal(relaxed.area.total.detach(), exact.area.total)


@pytest.mark.parametrize("dataflow", ["WS", "OS", "RS"])
@pytest.mark.parametrize("offset", [0.0, 0.37])
@pytest.mark.parametrize("model", MODELS)
def test_gradients_flow_to_every_accelerator_parameter(dataflow: str, offset: float, model: str) -> None:
    problem, hardware, mapping = _subnet_batch(dataflow)
    relaxed_hw, leaves = _relaxed(hardware, offset)
    cost = evaluate(problem, relaxed_hw, mapping, relaxed=True, hw_model=model)
    energy = cost.energy_total.sum()
    latency = cost.latency_s.sum()
    area = cost.area.total[0]
    objective = energy / energy.detach() + latency / latency.detach() + area / area.detach()
    objective.backward()
    grads = {f: leaf.grad for f, leaf in zip(FIELDS, leaves, strict=True)}
    for name, grad in grads.items():
        assert grad is not None and bool(torch.isfinite(grad).all()), name
    # More PEs and bigger buffers cost area: their gradients cannot all vanish.
    assert float(grads["pe_rows"].abs().sum()) > 0
    assert float(grads["pe_cols"].abs().sum()) > 0
    for name in ("wbuf_bytes", "ibuf_bytes", "obuf_bytes"):
        assert float(grads[name].sum()) > 0, name  # area and SRAM energy grow with the buffer


def test_relaxed_mode_stays_finite_for_tiny_banks() -> None:
    problem = ProblemTensors.from_problems(
        [ConvProblem(batch=1, in_channels=64, out_channels=64, in_h=8, in_w=8, kernel=3, pad=1)]
    )
    mapping = MappingTensors.from_mappings([Mapping(tile=[1, 8, 8, 8, 8], loop_order=["B", "OW", "OH", "IC", "OC"])])
    values = {f: torch.tensor([v], dtype=torch.float64, requires_grad=True) for f, v in zip(
        FIELDS, (64.0, 64.0, 1024.0, 64.0, 32.0, 128.0), strict=True)}  # fmt: skip
    hardware = HardwareTensors(**values, freq_mhz=torch.tensor([500.0], dtype=torch.float64),
                               dataflow=torch.tensor([0]))  # fmt: skip
    cost = evaluate(
        problem, hardware, mapping, relaxed=True, hw_model="simulator"
    )  # WBUF banks of 4 B, below CACTI's 128 B
    (cost.energy_total.sum() + cost.area.total.sum() + cost.latency_s.sum() * 1e9).backward()
    for name, leaf in values.items():
        assert bool(torch.isfinite(leaf.grad).all()), name
    assert bool(torch.isfinite(cost.energy_total).all())


@pytest.mark.gpu
def test_evaluate_on_cuda_equals_cpu() -> None:
    problem, hardware, mapping = _subnet_batch("WS")

    def to_cuda(obj):
        return type(obj)(**{k: getattr(obj, k).cuda() for k in (a.name for a in type(obj).__attrs_attrs__)})

    cpu = evaluate(problem, hardware, mapping, hw_model="simulator")
    gpu = evaluate(to_cuda(problem), to_cuda(hardware), to_cuda(mapping), hw_model="simulator")
    for name in ("total_cycles", "stall_cycles", "dram_read_bits", "obuf_write_bits"):
        assert torch.equal(getattr(gpu, name).cpu(), getattr(cpu, name)), name
    assert torch.allclose(gpu.energy_total.cpu(), cpu.energy_total, rtol=1e-12, atol=0)
