"""generate-accelerator: writes an accelerator of the space, mappings and costs; continues a generator."""

from __future__ import annotations

import pytest
import zoo_models
from jaqc.ir import LayerKind, verify
from jaqc.passes import PassContext, PassError, PassManager, make_pass, parse_pipeline

from jaqc.frontend import import_model
from jaqc.hw.generator.space import AcceleratorSpace


def test_pass_writes_accelerator_mappings_and_costs() -> None:
    graph = import_model(zoo_models.fbnet_like(), (1, 3, 16, 16), with_weights=False)
    ctx = PassContext()
    pipeline = parse_pipeline("fold-batchnorm,annotate-quant{w_bits=4,a_bits=4},generate-accelerator{steps=3}")
    result = PassManager(pipeline, verify_each=True).run(graph, ctx)
    assert result.changed
    acc = result.graph.accelerator
    space = AcceleratorSpace()
    assert acc.pe_rows in space.pe_choices and acc.ibuf_kb in space.buffer_choices_kb
    design = ctx.data["generated_design"]
    assert design.accelerator == acc and len(design.history) == 3 * 4
    weighted = result.graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)
    assert all(x.mapping is not None and x.cost is not None for x in weighted)
    assert {x.mapping.loop_order for x in weighted} == {design.loop_order}
    verify(result.graph)
    generator = ctx.data["hardware_generator"]
    again = make_pass("generate-accelerator", {"steps": "2"}).run(result.graph, ctx)
    assert ctx.data["hardware_generator"] is generator  # trained further, not replaced
    assert isinstance(again.changed, bool)


def test_options_are_checked() -> None:
    with pytest.raises(PassError, match="steps must be positive"):
        make_pass("generate-accelerator", {"steps": "0"})
    graph = import_model(zoo_models.fbnet_like(), (1, 3, 16, 16), with_weights=False)
    with pytest.raises(PassError, match="form must be 'linear' or 'log'"):
        make_pass("generate-accelerator", {"steps": "1", "form": "cubic"}).run(graph, PassContext())
