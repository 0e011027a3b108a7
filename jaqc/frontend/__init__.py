"""jaqc.frontend: torch.fx import of CNNs into the layer IR, model-spec loading, and an IR executor."""

from .errors import ImportErrorIR, ModelLoadError
from .executor import GraphExecutor
from .importer import FxImporter, import_model, register_module_handler, trace
from .loader import load_graph_spec, load_module, parse_shape

__all__ = [
    "FxImporter",
    "GraphExecutor",
    "ImportErrorIR",
    "ModelLoadError",
    "import_model",
    "load_graph_spec",
    "load_module",
    "parse_shape",
    "register_module_handler",
    "trace",
]
