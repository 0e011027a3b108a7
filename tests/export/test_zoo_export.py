"""Every zoo CNN (tests/zoo_models.ZOO, the styles of the common families) quantizes to w8a8 with calibrated
activation ranges, exports to Q/DQ ONNX, and runs under onnxruntime as the fake-quantized PyTorch model does."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import zoo_models

from jaqc.export.onnx_export import build_onnx, model_bytes
from jaqc.frontend import import_model
from jaqc.hw.accelerators import load_accelerator
from jaqc.nn.subnet import build_subnet
from jaqc.quantize import assign_bits, calibrate, parse_bits_spec, weighted_layers

#: A quantizer input that lands within float rounding of a step boundary moves one 8-bit step (docs/export.md):
#: the tolerance allows that, far below the logits' scale.
TOLERANCE = 1e-3


@pytest.mark.parametrize("name", sorted(zoo_models.ZOO))
def test_zoo_model_quantizes_and_exports(name: str) -> None:
    factory, shape = zoo_models.ZOO[name]
    torch.manual_seed(0)
    model = factory().eval()
    graph = import_model(model, shape, name=name)
    assign_bits(graph, parse_bits_spec("w8a8"))
    images = torch.randn(8, *shape[1:], generator=torch.Generator().manual_seed(1))
    calibrate(graph, images, method="minmax")
    assert all(x.quant is not None for x in weighted_layers(graph))  # first and last layers included
    onnx_model = build_onnx(graph, "qdq", 21, accelerator=load_accelerator("jaq-table2"))[0]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(model_bytes(onnx_model), options, providers=["CPUExecutionProvider"])
    batch = images[: shape[0]]
    exported = session.run(None, {session.get_inputs()[0].name: batch.numpy()})[0]
    with torch.no_grad():
        reference = build_subnet(graph)(batch).numpy()
    assert np.abs(exported - reference).max() < TOLERANCE
