"""A memo of the slow torch.onnx export step for the export tests.

The ``torch_export_memo`` fixture makes ``jaqc.export.onnx_export.torch_export`` reuse its result for the same
graph content and opset within the test session, so formats and tests share one export; tests without it
(determinism, a monkeypatched translation) run the exporter afresh.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from jaqc.ir import LayerGraph, graph_to_json

from jaqc.export import onnx_export


def _content_key(graph: LayerGraph, opset: int) -> str:
    """The graph's layers, quantization and weights (not its mappings: the torch export does not read them)."""
    bare = graph.clone()
    bare.accelerator = None
    for layer in bare:
        layer.mapping = None
        layer.cost = None
    text = json.dumps(graph_to_json(bare, weights=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest() + f"/{opset}"


_MEMO: dict[str, object] = {}
_REAL_TORCH_EXPORT = onnx_export.torch_export


def _memoized(graph: LayerGraph, opset: int):  # type: ignore[no-untyped-def]
    key = _content_key(graph, opset)
    if key not in _MEMO:
        _MEMO[key] = _REAL_TORCH_EXPORT(graph, opset)
    return _MEMO[key]


@pytest.fixture
def torch_export_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Within the test, ``onnx_export.torch_export`` reuses results for the same graph content and opset."""
    monkeypatch.setattr(onnx_export, "torch_export", _memoized)
