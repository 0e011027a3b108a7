"""The hardware generation network: sampling, decoding, exact relaxed objective, gradients, training."""

from __future__ import annotations

import math

import pytest
import torch
from hw_cases import PROBLEMS, SMALL_SPACE
from jaqc.ir import AcceleratorConfig

from jaqc.core import JaqcError
from jaqc.hw.generator.network import GeneratorConfig, HardwareGenerator, op_vector_tensor
from jaqc.hw.generator.objective import (
    HardwareWeights,
    NetworkTotals,
    best_mappings,
    relaxed_objective,
    subnet_totals,
)
from jaqc.hw.generator.training import GeneratorTraining, train_generator
from jaqc.hw.model.lowering import operator_vector

REF = AcceleratorConfig(pe_rows=8, pe_cols=8, wbuf_kb=64, ibuf_kb=64, obuf_kb=64)


def inputs() -> torch.Tensor:
    return op_vector_tensor([operator_vector(p).normalized() for p in PROBLEMS])


def test_sample_decodes_into_the_space_and_is_seeded() -> None:
    torch.manual_seed(0)
    g = HardwareGenerator(SMALL_SPACE, GeneratorConfig(hidden=32, blocks=2))
    a = g(inputs(), 2.0, torch.Generator().manual_seed(3))
    b = g(inputs(), 2.0, torch.Generator().manual_seed(3))
    assert a.digits == b.digits
    acc = a.accelerator()
    assert SMALL_SPACE.pe_min <= acc.pe_rows <= SMALL_SPACE.pe_max and acc.wbuf_kb in SMALL_SPACE.buffer_choices_kb
    assert float(a.relaxed("pe_cols").detach()) == acc.pe_cols
    assert all(float(v.detach().sum()) == 1.0 for v in a.one_hot.values())
    greedy = g(inputs(), 1.0, None)
    assert greedy.digits == tuple(int(lg.argmax()) for lg in greedy.logits.values())
    with pytest.raises(JaqcError, match=r"generator input must be \(layers, 7\)"):
        g(torch.zeros(3, 5))
    with pytest.raises(JaqcError, match="head 'dataflow' has no numeric value"):
        a.relaxed("dataflow")


def test_relaxed_objective_forward_is_exact_and_has_gradients() -> None:
    torch.manual_seed(1)
    g = HardwareGenerator(SMALL_SPACE, GeneratorConfig(hidden=32, blocks=2))
    sample = g(inputs(), 1.0, torch.Generator().manual_seed(0))
    mappings = best_mappings(PROBLEMS, sample.accelerator(), sample.loop_order())
    exact = subnet_totals(PROBLEMS, sample.accelerator(), mappings)
    reference = subnet_totals(PROBLEMS, REF, best_mappings(PROBLEMS, REF))
    weights = HardwareWeights(energy=0.2, latency=0.5, area=0.3)
    e_hw, totals = relaxed_objective(sample, PROBLEMS, mappings, weights, reference)
    assert float(totals["energy_nJ"].detach()) == pytest.approx(exact.energy_nJ, rel=1e-12)
    assert float(totals["latency_s"].detach()) == pytest.approx(exact.latency_s, rel=1e-12)
    assert float(totals["area_mm2"].detach()) == pytest.approx(exact.area_mm2, rel=1e-12)
    assert float(e_hw.detach()) == pytest.approx(exact.e_hw(weights, reference), rel=1e-12)
    e_hw.backward()
    for name in ("pe_rows", "pe_cols", "dataflow"):
        grad = g.heads[name].weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_log_form_is_log_edap_ratio() -> None:
    ref = NetworkTotals(energy_nJ=10.0, latency_s=2.0, area_mm2=4.0)
    x = NetworkTotals(energy_nJ=5.0, latency_s=4.0, area_mm2=1.0)
    assert x.e_hw(HardwareWeights(energy=1, latency=1, area=1, form="log"), ref) == pytest.approx(
        math.log(x.edap / ref.edap)
    )
    assert x.e_hw(HardwareWeights(), ref) == pytest.approx(0.33 * (0.5 + 2.0 + 0.25))
    with pytest.raises(JaqcError, match="form must be 'linear' or 'log'"):
        HardwareWeights(form="square")


def test_training_improves_on_its_start_and_reports_history() -> None:
    torch.manual_seed(0)
    g = HardwareGenerator(SMALL_SPACE, GeneratorConfig(hidden=32, blocks=2))
    reference = subnet_totals(PROBLEMS, REF, best_mappings(PROBLEMS, REF))
    seen: list[dict] = []
    _, design = train_generator(
        PROBLEMS,
        HardwareWeights(energy=1, latency=1, area=1, form="log"),
        GeneratorTraining(steps=15, lr=1e-2, samples_per_step=2, seed=0),
        generator=g,
        reference=reference,
        on_step=seen.append,
    )
    assert len(design.history) == 15 * 2 and seen == list(design.history)
    feasible = [h["e_hw"] for h in design.history if h["feasible"]]
    assert design.e_hw == min(feasible) and design.e_hw < feasible[0]
    exact = subnet_totals(PROBLEMS, design.accelerator, design.mappings)
    assert exact.e_hw(HardwareWeights(energy=1, latency=1, area=1, form="log"), reference) == pytest.approx(design.e_hw)
    assert all(m.loop_order == design.loop_order for m in design.mappings)
