"""Smoke tests of benchmarks/hw_sensitivity.py's small helpers (the benchmark itself runs for minutes)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

from jaqc.hw.model.problem import ConvProblem

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "hw_sensitivity.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hw_sensitivity_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _layer(name: str, a_bits: int = 8) -> ConvProblem:
    return ConvProblem(name=name, batch=1, in_channels=8, out_channels=8, in_h=4, in_w=4, kernel=1, a_bits=a_bits)


def test_bits_label(bench: ModuleType) -> None:
    assert bench.bits_label((2, 4)) == "w2a4"


def test_with_uniform_bits_chains_out_bits(bench: ModuleType) -> None:
    layers = bench.with_uniform_bits([_layer("a"), _layer("b"), _layer("c")], (2, 4), 8)
    assert [(p.w_bits, p.a_bits) for p in layers] == [(2, 4)] * 3
    assert [p.out_bits for p in layers] == [4, 4, 8]


def test_max_step_ratio(bench: ModuleType) -> None:
    assert bench.max_step_ratio([3.0, 2.0, 2.0, 1.0]) == 1.0
    assert bench.max_step_ratio([3.0, 1.0, 2.0]) == 2.0
    assert bench.max_step_ratio([5.0]) == 1.0
    assert bench.max_step_ratio([1.0, math.inf]) == math.inf


def test_target(bench: ModuleType) -> None:
    assert bench.target(0.35, 0.35, "<=", "x")["pass"]
    assert not bench.target(1.0, 1.0, "<", "x")["pass"]
    record = bench.target(0.2, 0.5, "<=", "energy")
    assert record == {"value": 0.2, "threshold": 0.5, "op": "<=", "pass": True, "what": "energy"}
    with pytest.raises(ValueError):
        bench.target(1.0, 1.0, ">", "x")


def test_write_json_atomic(bench: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.json"
    bench.write_json_atomic(path, {"b": 1, "a": [1.5]})
    assert json.loads(path.read_text()) == {"a": [1.5], "b": 1}
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]  # no temporary file left behind


def test_coordinate_descent_finds_separable_minimum(bench: ModuleType) -> None:
    goal = (3, 0, 7)
    calls: list[int] = []

    def objective(points: list[tuple[int, ...]]) -> list[float]:
        calls.append(len(points))
        return [sum((x - g) ** 2 for x, g in zip(p, goal, strict=True)) for p in points]

    run = bench.coordinate_descent(objective, (5, 4, 9), (0, 3, 0), max_rounds=5)
    assert run["digits"] == goal and run["value"] == 0
    assert run["converged"] and run["rounds"] == 2  # one improving round, one confirming round
    assert run["evaluations"] == sum(calls)


def test_coordinate_descent_skips_infeasible_and_respects_round_limit(bench: ModuleType) -> None:
    def objective(points: list[tuple[int, ...]]) -> list[float]:
        return [math.inf if p[0] == 0 else float(-p[0] - p[1]) for p in points]

    run = bench.coordinate_descent(objective, (3, 3), (1, 0), max_rounds=1)
    assert run["digits"] == (2, 2) and run["rounds"] == 1 and not run["converged"]
