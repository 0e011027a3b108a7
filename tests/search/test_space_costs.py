"""The search prices its space from the traced supernet IR (issue #11, items 1 and 6).

Guards: for the ``tiny`` and ``cifar10`` presets, the layers :class:`SpaceCosts` lowers from the IR, the fixed
layers, the residual flags, the head's bits and the expected-cost model's reference figures equal what the
search computed from ``SupernetConfig`` shape arithmetic before (pinned in ``tests/golden/search_space_costs.json``,
written by that code). And the lowering refuses spaces its cost model cannot price, naming the layer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jaqc.ir import parse

from jaqc.hw.generator.objective import HardwareWeights
from jaqc.nn.config import supernet_preset
from jaqc.search.hw_binding import ExpectedHardwareCost
from jaqc.search.space_costs import SpaceCosts, SpaceError

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "search_space_costs.json").read_text())


def _plain(problems) -> list[dict]:  # type: ignore[no-untyped-def]
    out = []
    for p in problems:
        record = p.to_reference()
        record.pop("name")
        out.append(record)
    return out


@pytest.mark.parametrize("preset", ["tiny", "cifar10"])
def test_ir_derived_costs_equal_the_config_derived_ones(preset: str) -> None:
    config = supernet_preset(preset)
    space = SpaceCosts.from_config(config)
    golden = GOLDEN[preset]
    assert space.ops == tuple(config.candidates) and len(space.blocks) == config.num_blocks
    for block, ops in enumerate(golden["blocks"]):
        for op, layers in ops.items():
            assert _plain(space.candidate_problems(block, op, (4, 2), 4)) == layers, (block, op)
    assert _plain(space.fixed_problems(2)) == golden["fixed"]
    assert list(space.residual) == golden["residual"] and space.head_bits == golden["head_bits"]
    bits = (config.quant.weight_bits, config.quant.activation_bits)
    cost = ExpectedHardwareCost(space, bits, HardwareWeights())
    assert cost.reference.energy_nJ == pytest.approx(golden["reference_energy_nJ"], rel=1e-12)
    assert cost.reference.latency_s == pytest.approx(golden["reference_latency_s"], rel=1e-12)


def test_problem_names_are_the_ir_paths() -> None:
    space = SpaceCosts.from_config(supernet_preset("tiny"))
    assert [p.name for p in space.candidate_problems(1, "k3_e3")] == [
        "blocks.1.k3_e3.expand", "blocks.1.k3_e3.dw", "blocks.1.k3_e3.project",
    ]  # fmt: skip
    assert space.candidate(0, "skip").identity and not space.candidate(1, "skip").identity  # 8->16 channels
    assert [p.name for p in space.fixed_problems()] == ["stem.0", "head.0", "classifier"]
    with pytest.raises(SpaceError, match="block 0 has no candidate 'k9_e9'"):
        space.candidate(0, "k9_e9")


CANDIDATE = """  candidate a {{
    %in = input : [1,4,8,8]
    %c = conv2d[k=1](%in) : [1,4,8,8]->[1,4,8,8]
    %out = output(%c) : [1,4,8,8]->[1,4,8,8]
  }}"""


def _space_text(between: str = "", second_input: str = "%b0") -> str:
    block = "%{name} = choice({src}) : [1,4,8,8]->[1,4,8,8] bits={{2,4,8}} {{\n" + CANDIDATE + "\n}}\n"
    return (
        "graph s\n%x = input : [1,4,8,8]\n%stem = conv2d[k=3,p=1](%x) : [1,4,8,8]->[1,4,8,8]\n"
        + block.format(name="b0", src="%stem")
        + between
        + block.format(name="b1", src=second_input)
        + "%head = conv2d[k=1](%b1) : [1,4,8,8]->[1,4,8,8]\n"
    )


def test_a_chain_space_is_lowered() -> None:
    space = SpaceCosts.from_graph(parse(_space_text()))
    assert space.ops == ("a",) and [p.name for p in space.fixed_problems()] == ["stem", "head"]
    assert space.candidate_problems(1, "a", (2, 4), 8)[0].out_bits == 8


def test_spaces_the_cost_model_cannot_price_are_named() -> None:
    between = "%mid = conv2d[k=1](%b0) : [1,4,8,8]->[1,4,8,8]\n"
    with pytest.raises(SpaceError, match=r"layer %mid: a conv2d layer between choice layers"):
        SpaceCosts.from_graph(parse(_space_text(between, "%mid")))
    with pytest.raises(SpaceError, match="has no choice layers"):
        SpaceCosts.from_graph(parse("graph p\n%x = input : [1,4,8,8]\n"))


def test_derivation_is_extract_subnets_selection() -> None:
    """The search derives what the extract-subnet pass extracts from the supernet traced at the same α and β."""
    import torch
    from jaqc.ir import LayerKind
    from jaqc.passes.extract_subnet import chosen_candidate, chosen_quant

    from jaqc.nn.supernet import Supernet
    from jaqc.nn.supernet_ir import trace_supernet
    from jaqc.search.jaq import derive_architecture

    net = Supernet(supernet_preset("tiny"))
    space = SpaceCosts.from_supernet(net)
    assert derive_architecture(space, net).ops == ("k3_e1",) * 5  # all α equal: the first op (ties: the first)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in net.arch.parameters():
            p.copy_(torch.randn(p.shape, generator=generator))
    derived = derive_architecture(space, net)
    traced = trace_supernet(net, with_weights=False)  # carries the live α and β
    for b, layer in enumerate(traced.layers_of(LayerKind.CHOICE)):
        chosen = chosen_candidate(layer)
        quant = chosen_quant(layer.choice.bits, chosen)
        assert (derived.ops[b], derived.bits[b]) == (chosen.op, (quant.w_bits, quant.a_bits))
    assert len(set(derived.ops)) > 1  # the random α do not all pick one op


def test_the_generator_reads_what_encode_layers_writes() -> None:
    """The hardware generator's inputs during a search (the derived problems' operator vectors) are the vectors
    the encode-layers pass writes on the derived subnet's IR, layer for layer."""
    from jaqc.ir import LayerKind
    from jaqc.passes import PassContext
    from jaqc.passes.encode_layers import EncodeLayers

    from jaqc.hw.model.lowering import operator_vector
    from jaqc.nn.subnet import DerivedSubnet
    from jaqc.nn.tracing import trace_model

    config = supernet_preset("tiny")
    ops, bits = ["k3_e3", "k5_e1_g2", "skip", "k5_e6", "k3_e1"], [(4, 2), (8, 4), (2, 8), (4, 4), (2, 2)]
    model = DerivedSubnet(config, ops, bits).eval()
    graph = trace_model(model, model.example_input_shape)
    EncodeLayers().run(graph, PassContext())
    from_pass = [x.op_vector for x in graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)]
    from_search = [operator_vector(p) for p in SpaceCosts.from_config(config).derived_problems(ops, bits)]
    assert from_pass == from_search and len(from_pass) > 10
