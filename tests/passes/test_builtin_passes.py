"""fold-batchnorm (numerically, against torch), annotate-quant, shape-check: changed and unchanged runs."""

from __future__ import annotations

import pytest
import torch
import zoo_models
from jaqc.ir import LayerKind, QuantSpec, parse, print_graph, verify
from jaqc.passes import PassContext, PassManager, parse_pipeline
from jaqc.passes.annotate_quant import AnnotateQuant
from jaqc.passes.fold_batchnorm import FoldBatchNorm
from jaqc.passes.shape_check import ShapeCheck

from jaqc.frontend import GraphExecutor, import_model


@pytest.mark.parametrize("name", ["resnet_tiny", "mobilenet_v2_se_hswish", "shufflenet_like", "fbnet_like"])
def test_fold_batchnorm_matches_torch(name: str) -> None:
    factory, shape = zoo_models.ZOO[name]
    model = factory()
    graph = import_model(model, shape)
    n_bn = len(graph.layers_of(LayerKind.BATCHNORM))
    result = FoldBatchNorm().run(graph, PassContext())
    assert result.changed
    verify(result.graph)
    assert len(result.graph.layers_of(LayerKind.BATCHNORM)) == 0
    assert len(result.graph) == len(import_model(model, shape)) - n_bn
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
        got = GraphExecutor(result.graph)(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    again = FoldBatchNorm().run(result.graph, PassContext())
    assert not again.changed


def test_fold_keeps_batchnorm_after_shared_conv() -> None:
    text = """%x = input : [1,2,4,4]
%c = conv2d[k=1](%x) : [1,2,4,4]->[1,2,4,4]
%b = batchnorm(%c) : [1,2,4,4]->[1,2,4,4]
%r = relu(%c) : [1,2,4,4]->[1,2,4,4]
"""
    g = parse(text)
    assert not FoldBatchNorm().run(g, PassContext()).changed
    assert print_graph(g) == print_graph(parse(text))


def test_structural_fold_without_weights() -> None:
    g = parse(
        "%x = input : [1,2,4,4]\n%c = conv2d[k=1](%x) : [1,2,4,4]->[1,2,4,4]\n%b = batchnorm(%c) : [1,2,4,4]->[1,2,4,4]\n%r = relu(%b) : [1,2,4,4]->[1,2,4,4]\n"  # noqa: E501
    )
    out = FoldBatchNorm().run(g, PassContext()).graph
    assert out.names() == ["x", "c", "r"]
    assert out["c"].params.bias and out["r"].inputs == ("c",)


def test_annotate_quant_first_last_and_unchanged() -> None:
    graph = import_model(zoo_models.fbnet_like(), (1, 3, 16, 16))
    weighted = [x for x in graph if x.kind in (LayerKind.CONV2D, LayerKind.LINEAR)]
    result = AnnotateQuant(w_bits=4, a_bits=2).run(graph, PassContext())
    assert result.changed
    assert weighted[0].quant is None and weighted[-1].quant is None
    assert all(x.quant == QuantSpec(4, 2) for x in weighted[1:-1])
    assert not AnnotateQuant(w_bits=4, a_bits=2).run(graph, PassContext()).changed
    AnnotateQuant(w_bits=8, a_bits=None, keep_first_last=False).run(graph, PassContext())
    assert all(x.quant == QuantSpec(8, None) for x in weighted)


def test_shape_check_never_changes_and_reports() -> None:
    g = parse("%x = input : [1,2,4,4]\n%r = relu(%x) : [1,2,4,4]->[1,2,4,5]\n")
    with pytest.raises(Exception, match="%r: output shape"):
        ShapeCheck().run(g, PassContext())
    ok = parse("%x = input : [1,2,4,4]\n")
    assert not ShapeCheck().run(ok, PassContext()).changed


def test_pipeline_on_imported_model_stays_verified() -> None:
    graph = import_model(zoo_models.mobilenet_v2_se_hswish(), (1, 3, 32, 32))
    result = PassManager(
        parse_pipeline("shape-check,fold-batchnorm,annotate-quant{w_bits=4,a_bits=4}"), verify_each=True
    ).run(graph)
    assert result.changed
