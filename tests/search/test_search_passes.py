"""User passes shape a search (issue #11, item 3): a plugin pass run on the traced supernet narrows what blocks
may choose, and the derived subnet obeys it; passes the search cannot follow are refused, naming the layer."""

from __future__ import annotations

from typing import ClassVar

import attrs
import pytest
import torch
from attrs import frozen
from jaqc.ir import Choice, LayerGraph, LayerKind
from jaqc.ir.types import QuantSpec
from jaqc.passes import Pass, PassContext, PassResult, register

from jaqc.core import JaqcError
from jaqc.nn.supernet import Supernet
from jaqc.nn.supernet_ir import trace_supernet
from jaqc.search.runner import SearchRun
from jaqc.search.space_costs import SpaceError, shape_space

from .test_jaq_runner import small_preset

pytestmark = pytest.mark.usefixtures("one_thread")  # searches at 1 thread (conftest.one_thread)


@frozen
class PinEnds(Pass):
    """pin-ends{bits=8}: the first and the last choice layer search only ``bits`` (weights and activations)."""

    name: ClassVar[str] = "pin-ends"
    requires: ClassVar[tuple[str, ...]] = ("supernet",)
    bits: int = 8

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        choices = graph.layers_of(LayerKind.CHOICE)
        for layer in (choices[0], choices[-1]):
            candidates = [attrs.evolve(c, beta_w=None, beta_a=None) for c in layer.choice.candidates]
            layer.choice = Choice(candidates=candidates, bits=(self.bits,))
        return PassResult(graph, True)


@frozen
class NoSkipFirst(Pass):
    """no-skip-first: the first choice layer loses its skip candidate."""

    name: ClassVar[str] = "no-skip-first"

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        first = graph.layers_of(LayerKind.CHOICE)[0]
        kept = [c for c in first.choice.candidates if c.op != "skip"]
        total = sum(c.alpha or 0.0 for c in kept)
        kept = [
            attrs.evolve(c, alpha=None if c.alpha is None else c.alpha / total) for c in kept
        ]  # still a distribution
        first.choice = Choice(candidates=kept, bits=first.choice.bits)
        return PassResult(graph, True)


@frozen
class WidenStem(Pass):
    """widen-stem: quantizes the stem (a change the supernet that trains cannot follow)."""

    name: ClassVar[str] = "widen-stem"

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        stem = graph.layers_of(LayerKind.CONV2D)[0]
        stem.quant = QuantSpec(4, 4)
        return PassResult(graph, True)


for _cls in (PinEnds, NoSkipFirst, WidenStem):
    register(_cls)


def _search(tmp_path, passes: str):  # type: ignore[no-untyped-def]
    preset = small_preset()
    preset = attrs.evolve(preset, settings=attrs.evolve(preset.settings, passes=passes))
    return SearchRun(preset, tmp_path / (passes or "plain")).run(progress=False)


def test_a_plugin_pass_pins_the_first_and_last_blocks_to_8_bits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    plain = _search(tmp_path, "")
    assert plain.summary["architecture"]["bits"][0] != [8, 8]  # without the pass the search goes lower
    pinned = _search(tmp_path, "pin-ends,no-skip-first")
    bits, ops = pinned.summary["architecture"]["bits"], pinned.summary["architecture"]["ops"]
    assert bits[0] == [8, 8] and bits[-1] == [8, 8]
    assert ops[0] != "skip" and plain.summary["architecture"]["ops"][0] == "skip"
    assert pinned.summary["search_passes"] == "pin-ends,no-skip-first"
    assert pinned.summary["narrowed_choices"] == ["block 0: ops k3_e1,k5_e1; bits 8", "block 4: bits 8"]
    assert "search_passes" not in plain.summary
    # the subnet written (and mapped) is the derived one, at 8 bits at both ends
    import json

    subnet = json.loads((tmp_path / "pin-ends,no-skip-first" / "subnet.json").read_text())
    quant = {x["name"]: x.get("quant") for x in subnet["layers"]}
    assert quant["blocks.0.expand"] == {"w_bits": 8, "a_bits": 8}


def test_passes_the_search_cannot_follow_are_refused() -> None:
    config = small_preset().supernet
    traced = trace_supernet(Supernet(config), with_weights=False)
    with pytest.raises(SpaceError, match=r"layer %stem.0 changed .*a search pass may only narrow choice layers"):
        shape_space(traced, "widen-stem", config.quant.weight_bits)
    with pytest.raises(JaqcError, match="unknown pass 'no-such-pass'"):
        attrs.evolve(small_preset().settings, passes="no-such-pass")


def test_restricted_probabilities_and_sampling() -> None:
    config = small_preset().supernet
    net = Supernet(config)
    traced = trace_supernet(net, with_weights=False)
    choices = shape_space(traced, "pin-ends,no-skip-first", config.quant.weight_bits)
    net.arch.restrict(*choices.masks(config.candidates, config.quant.weight_bits, config.quant.activation_bits))
    alpha, beta_w = net.arch.alpha_probs().detach(), net.arch.beta_w_probs().detach()
    assert float(alpha[0, config.candidates.index("skip")]) == 0.0 and float(alpha[0].sum()) == pytest.approx(1.0)
    assert beta_w[0, :, -1].tolist() == [1.0] * len(config.candidates)  # only 8 bits left in block 0
    net.train()
    for _ in range(5):
        sample = net.arch.sample()
        assert float(sample.alpha.detach()[0, config.candidates.index("skip")]) == 0.0
        assert torch.isfinite(sample.beta_a).all()
