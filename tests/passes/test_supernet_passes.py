"""extract-subnet and csq-instrument on a hand-written supernet IR."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest
from jaqc.ir import Choice, LayerGraph, LayerKind, QuantSpec, parse, print_graph, verify
from jaqc.passes import PassContext, PassError, make_pass
from jaqc.passes.csq_instrument import CsqInstrument
from jaqc.passes.extract_subnet import ExtractSubnet

from jaqc.nn.csq_select import csq_channel_count, top_k_channels

SUPERNET = Path(__file__).parents[1] / "golden" / "extract-subnet" / "two-blocks.in.txt"


def supernet() -> LayerGraph:
    return parse(SUPERNET.read_text(), source=str(SUPERNET))


def test_extract_subnet_inlines_argmax_candidates() -> None:
    g = supernet()
    result = ExtractSubnet().run(g, PassContext())
    assert result.changed
    out = result.graph
    verify(out)
    assert not out.layers_of(LayerKind.CHOICE)
    # blocks.0: alpha argmax is k5_e1; beta_w argmax -> 2 bit (first of the tied 0.4s), beta_a -> 2 bit
    assert out["blocks.0.dw"].params.kernel == (5, 5)
    assert out["blocks.0.dw"].quant == QuantSpec(2, 2) and out["blocks.0.pwl"].quant == QuantSpec(2, 2)
    assert out["blocks.0.res"].inputs == ("stem_act", "blocks.0.pwl_bn")
    assert out["blocks.0.dw"].meta["choice"] == "k5_e1"
    # blocks.1: skip wins -> the global pool reads blocks.0's result directly
    assert out["gap"].inputs == ("blocks.0.res",)
    assert "blocks.1" not in out and not [n for n in out.names() if n.startswith("blocks.1")]
    assert not ExtractSubnet().run(out, PassContext()).changed


def test_extract_subnet_keeps_quant_without_betas() -> None:
    g = supernet()
    blocks1 = g["blocks.1"]
    blocks1.choice = Choice(
        [attrs.evolve(c, alpha=0.9 if c.op == "k3_e1" else 0.1) for c in blocks1.choice.candidates], blocks1.choice.bits
    )
    out = ExtractSubnet().run(g, PassContext()).graph
    assert out["blocks.1.dw"].quant == QuantSpec(8, 8)


def test_csq_count_and_tie_breaking() -> None:
    assert [csq_channel_count(c, 3) for c in (1, 16, 33, 34, 100, 352)] == [1, 1, 1, 2, 3, 11]
    assert csq_channel_count(10, 100) == 10 and csq_channel_count(10, 10) == 1
    assert top_k_channels(np.array([1.0, 3.0, 3.0, 2.0]), 50).tolist() == [1, 2]
    assert top_k_channels(np.array([5.0, 1.0, 5.0, 5.0]), 50).tolist() == [0, 2]
    with pytest.raises(PassError, match=r"k_percent must be in \(0, 100\]"):
        make_pass("csq-instrument", {"k_percent": "0"})


def _set_gammas(g, rng):
    gammas = {}
    g["stem_bn"].weights = {"weight": rng.standard_normal(8).astype(np.float32)}
    for cand in g["blocks.0"].choice.candidates:
        if "pwl_bn" in cand.graph:
            gamma = rng.standard_normal(8).astype(np.float32)
            cand.graph["pwl_bn"].weights = {"weight": gamma}
            cand.graph["dw_bn"].weights = {"weight": np.full(8, 100.0, np.float32)}  # not the output BN
            gammas[cand.op] = gamma
    return gammas


def test_csq_instrument_matches_equation_8() -> None:
    g = supernet()
    gammas = _set_gammas(g, np.random.default_rng(0))
    result = CsqInstrument(k_percent=25).run(g, PassContext())
    assert result.changed
    # blocks.0 reads the stem: Γ = |γ_stem|
    stem = np.abs(g["stem_bn"].weights["weight"].astype(np.float64))
    assert g["blocks.0"].csq_channels == tuple(sorted(np.argsort(-stem, kind="stable")[:2].tolist()))
    # blocks.1 reads blocks.0: Γ = 0.25·|γ_k3| + 0.5·|γ_k5| + 0.25·0 (skip)
    gamma = 0.25 * np.abs(gammas["k3_e1"].astype(np.float64)) + 0.5 * np.abs(gammas["k5_e1"].astype(np.float64))
    assert g["blocks.1"].csq_channels == tuple(sorted(np.argsort(-gamma, kind="stable")[:2].tolist()))
    verify(g)
    assert not CsqInstrument(k_percent=25).run(g, PassContext()).changed
    assert "csq{" in print_graph(g)


def test_csq_instrument_without_weights_leaves_graph() -> None:
    g = supernet()
    log: list[str] = []
    result = CsqInstrument().run(g, PassContext(log=log.append))
    assert not result.changed
    assert any("no batchnorm scales before %blocks.0, %blocks.1" in m for m in log)
