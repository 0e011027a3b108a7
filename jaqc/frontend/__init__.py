"""jaqc.frontend: model import into the layer IR (torch.fx for PyTorch, ONNX), model-spec loading, and an
IR executor.

Attributes are imported on first use, so ``jaqc.frontend.import_onnx`` works without torch installed.
"""

from __future__ import annotations

from jaqc.lazy import lazy_exports

_EXPORTS = {
    "FxImporter": "importer",
    "import_model": "importer",
    "register_module_handler": "importer",
    "trace": "importer",
    "GraphExecutor": "executor",
    "ImportErrorIR": "errors",
    "ModelLoadError": "errors",
    "load_graph_spec": "loader",
    "load_module": "loader",
    "parse_shape": "loader",
    "import_onnx": "onnx_import",
    "OnnxImportError": "onnx_import",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
