"""The code in docs/ runs: the complete pass of writing_passes.md works as documented."""

from __future__ import annotations

import re
from pathlib import Path

import zoo_models
from jaqc.ir import LayerKind, QuantSpec
from jaqc.passes import PassContext, PassManager, parse_pipeline, register, registry

from jaqc.frontend import import_model

DOCS = Path(__file__).parents[1] / "docs"


def _python_blocks(name: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), flags=re.S)


def test_writing_passes_example_pass_runs(monkeypatch) -> None:
    monkeypatch.setattr(registry, "_extra", {})  # keep the registration local to this test
    namespace: dict = {}
    exec(compile(_python_blocks("writing_passes.md")[0], "writing_passes.md", "exec"), namespace)
    cls = namespace["DepthwiseBits"]
    register(cls)
    graph = import_model(zoo_models.mobilenet_v2_se_hswish(), (1, 3, 32, 32))
    pm = PassManager(parse_pipeline("fold-batchnorm,annotate-quant{w_bits=4},depthwise-bits"), verify_each=True)
    result = pm.run(graph)
    convs = result.graph.layers_of(LayerKind.CONV2D)
    dw = [c for c in convs if c.params.groups == c.in_channels]
    assert dw and all(c.quant == QuantSpec(8, 8) for c in dw)
    assert any(c.quant == QuantSpec(4, 8) for c in convs)
    assert not cls().run(result.graph, PassContext()).changed


def test_search_md_user_space_builds_and_is_priced_like_its_derived_subnets(tmp_path: Path) -> None:
    """docs/search.md's MobileNetV3-style space (squeeze-excite, hardswish) builds a supernet, and the search's
    cost of a derived subnet equals the cost model's lowering of that subnet traced on its own."""
    import attrs
    import torch

    from jaqc.hw.model.lowering import PRICED_KINDS, layer_problem
    from jaqc.nn.config import supernet_preset
    from jaqc.nn.space import with_space
    from jaqc.nn.subnet import DerivedSubnet
    from jaqc.nn.supernet import Supernet
    from jaqc.nn.tracing import trace_model
    from jaqc.search.space_costs import SpaceCosts

    (block,) = [b for b in _python_blocks("search.md") if "class MobileNetV3Space" in b]
    (tmp_path / "mbv3_space.py").write_text(block)
    config = with_space(supernet_preset("tiny"), f"{tmp_path / 'mbv3_space.py'}:MobileNetV3Space")
    assert config.candidates == ("k3_e3", "k3_e6", "k5_e3", "k5_e6") and config.num_blocks == 4
    assert Supernet(config)(torch.randn(2, 1, 16, 16)).shape == (2, 10)
    space = SpaceCosts.from_config(config)
    assert [p.name.rsplit(".", 1)[1] for p in space.candidate(1, "k5_e6").problems] == [
        "expand", "dw", "se_reduce", "se_expand", "project",
    ]  # fmt: skip
    ops, bits = ("k3_e3", "k5_e6", "k3_e6", "k5_e3"), ((2, 2), (4, 8), (8, 4), (2, 4))
    model = DerivedSubnet(config, ops, bits).eval()
    graph = trace_model(model, model.example_input_shape)
    traced = [attrs.evolve(layer_problem(graph, x), name="") for x in graph.topo_order() if x.kind in PRICED_KINDS]
    assert [attrs.evolve(p, name="") for p in space.derived_problems(ops, bits)] == traced
