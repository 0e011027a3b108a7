"""Designing an accelerator for a fixed subnet: the generator, then the coordinate search of jaqc.hw.design; the
design-accelerator pass and ``jaqc design``."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hw_cases import PROBLEMS, SMALL_SPACE
from jaqc.ir import AcceleratorConfig, Dataflow, load_graph
from jaqc.ir.types import LayerKind

from jaqc.cli import cli
from jaqc.hw.design import design_accelerator, polish_design
from jaqc.hw.errors import HardwareError
from jaqc.hw.generator.network import GeneratorConfig, HardwareGenerator
from jaqc.hw.generator.objective import HardwareWeights, mapped_totals, subnet_totals
from jaqc.hw.generator.space import DIGIT_NAMES, HardwarePoint
from jaqc.hw.generator.training import GeneratorTraining
from jaqc.hw.model.orders import ALL_ORDERS

SPACE = SMALL_SPACE
REF = AcceleratorConfig(pe_rows=8, pe_cols=8, wbuf_kb=64, ibuf_kb=64, obuf_kb=64)
WEIGHTS = HardwareWeights(energy=1, latency=1, area=1, form="log")
ZOO = str(Path(__file__).parents[1] / "zoo_models.py")


def exact_e_hw(point: HardwarePoint, reference) -> float:
    found = mapped_totals(PROBLEMS, point.accelerator, point.loop_order)
    return found.e_hw(WEIGHTS, reference)


def start_point() -> HardwarePoint:
    accelerator = AcceleratorConfig(pe_rows=4, pe_cols=12, wbuf_kb=128, ibuf_kb=128, obuf_kb=128, dataflow="RS")
    return HardwarePoint(accelerator=accelerator, loop_order=ALL_ORDERS[77])


def test_the_search_ends_where_no_single_digit_change_improves() -> None:
    reference = mapped_totals(PROBLEMS, REF)
    result = polish_design(PROBLEMS, start_point(), WEIGHTS, reference, space=SPACE)
    assert result.start_e_hw == pytest.approx(exact_e_hw(start_point(), reference), rel=1e-12)
    assert result.converged and result.e_hw < result.start_e_hw and result.improvement > 1.0
    final = HardwarePoint(accelerator=result.accelerator, loop_order=result.loop_order)
    assert result.e_hw == pytest.approx(exact_e_hw(final, reference), rel=1e-12)
    assert result.totals.e_hw(WEIGHTS, reference) == pytest.approx(result.e_hw, rel=1e-12)
    assert all(m.loop_order == result.loop_order for m in result.mappings)
    # brute force: every neighbour that differs in one digit is no better
    digits = SPACE.digits_of(final)
    for position, radix in enumerate(SPACE.radices):
        for value in range(radix):
            neighbour = SPACE.point_from_digits((*digits[:position], value, *digits[position + 1 :]))
            try:
                assert exact_e_hw(neighbour, reference) >= result.e_hw - 1e-12
            except HardwareError:  # a neighbour some layer cannot be mapped on
                pass
    # every move lowered E_HW, and names its digit
    values = [result.start_e_hw] + [m["e_hw"] for m in result.moves]
    assert all(b < a for a, b in itertools.pairwise(values))
    assert {m["digit"] for m in result.moves} <= set(DIGIT_NAMES) and result.moves[-1]["e_hw"] == result.e_hw
    again = polish_design(PROBLEMS, start_point(), WEIGHTS, reference, space=SPACE)
    assert (again.accelerator, again.loop_order, again.e_hw) == (result.accelerator, result.loop_order, result.e_hw)


def test_max_sweeps_bounds_the_search_and_is_reported() -> None:
    reference = mapped_totals(PROBLEMS, REF)
    sweeps: list[dict] = []
    one = polish_design(PROBLEMS, start_point(), WEIGHTS, reference, space=SPACE, max_sweeps=1, on_sweep=sweeps.append)
    assert one.sweeps == 1 and len(sweeps) == 1 and sweeps[0]["e_hw"] == one.e_hw
    full = polish_design(PROBLEMS, start_point(), WEIGHTS, reference, space=SPACE)
    assert full.e_hw <= one.e_hw and full.sweeps >= 2
    assert one.converged is (full.sweeps == 1)
    with pytest.raises(HardwareError, match="max_sweeps must be >= 1"):
        polish_design(PROBLEMS, start_point(), WEIGHTS, reference, space=SPACE, max_sweeps=0)


def test_a_start_outside_the_space_is_refused() -> None:
    outside = HardwarePoint(accelerator=REF.__class__(pe_rows=64, pe_cols=8, wbuf_kb=64, ibuf_kb=64, obuf_kb=64),
                            loop_order=ALL_ORDERS[0])  # fmt: skip
    with pytest.raises(HardwareError, match="pe_rows=64 is not in the accelerator space"):
        polish_design(PROBLEMS, outside, WEIGHTS, space=SPACE)


def test_design_starts_from_the_generators_best_design() -> None:
    torch.manual_seed(0)
    generator = HardwareGenerator(SPACE, GeneratorConfig(hidden=32, blocks=2))
    steps: list[dict] = []
    _, design = design_accelerator(
        PROBLEMS, WEIGHTS, GeneratorTraining(steps=6, samples_per_step=2), generator=generator, on_step=steps.append
    )
    generated, polished = design.generated, design.polished
    assert len(steps) == 12
    assert polished.start_e_hw == pytest.approx(generated.e_hw, rel=1e-12)  # the generator's own E_HW
    assert polished.e_hw <= generated.e_hw and design.improvement == pytest.approx(
        math.exp(generated.e_hw - polished.e_hw)
    )
    reference = mapped_totals(PROBLEMS, AcceleratorConfig(pe_rows=16, pe_cols=16, wbuf_kb=384, ibuf_kb=384,
                                                          obuf_kb=384))  # fmt: skip
    exact = subnet_totals(PROBLEMS, polished.accelerator, polished.mappings)
    assert exact.e_hw(WEIGHTS, reference) == pytest.approx(polished.e_hw, rel=1e-12)


def test_the_pass_writes_the_searched_design_and_keeps_both() -> None:
    from jaqc.passes import PassContext, PassManager, make_pass

    from jaqc.frontend.loader import load_graph_spec

    graph = load_graph_spec(f"{ZOO}:fbnet_like", with_weights=False)
    logged: list[str] = []
    ctx = PassContext(log=logged.append)
    design_pass = make_pass("design-accelerator", {"steps": "3", "max_sweeps": "1", "lambda_a": "0.8"})
    out = PassManager([design_pass]).run(graph, ctx).graph
    design = ctx.data["accelerator_design"]
    assert out.accelerator == design.polished.accelerator and out.hw_model == "deployment"
    assert all(layer.mapping is not None for layer in out.layers_of(LayerKind.CONV2D))
    assert any("sweep 1" in line for line in logged) and "x" in logged[-1]
    with pytest.raises(Exception, match="max_sweeps must be >= 1"):
        make_pass("design-accelerator", {"max_sweeps": "0"})


def test_jaqc_design_reports_both_designs_and_writes_the_model(tmp_path: Path) -> None:
    out = tmp_path / "designed.json"
    args = ["design", f"{ZOO}:fbnet_like", "--steps", "3", "--max-sweeps", "1", "--json", "-o", str(out)]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    generated, designed = result["designs"]
    assert (generated["design"], designed["design"]) == ("generator", "designed")
    assert result["improvement"] == pytest.approx(generated["e_hw"] / designed["e_hw"])
    assert designed["e_hw"] <= generated["e_hw"] and result["search"]["sweeps"] == 1
    assert designed["edap"] == pytest.approx(designed["energy_mJ"] * designed["latency_ms"] * designed["area_mm2"])
    saved = load_graph(out)
    assert saved.accelerator.to_json() == designed["accelerator"]
    assert saved.accelerator.dataflow in tuple(Dataflow)
    bad = CliRunner().invoke(cli, ["design", f"{ZOO}:fbnet_like", "--max-sweeps", "0"])
    assert bad.exit_code == 2 and "Invalid value for '--max-sweeps'" in bad.output
