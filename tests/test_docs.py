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
