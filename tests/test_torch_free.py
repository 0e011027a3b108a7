"""jaqc.ir and jaqc.passes import, and work, with torch hidden."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import jaqc.ir, jaqc.passes
from jaqc.passes import parse_pipeline, PassManager
from jaqc.passes.registry import BUILTIN_PASSES, get_pass_class
for name in BUILTIN_PASSES:
    get_pass_class(name)
g = jaqc.ir.parse(
    "%x = input : [1,3,4,4]\\n"
    "%c = conv2d[k=1](%x) : [1,3,4,4]->[1,4,4,4]\\n"
    "%b = batchnorm(%c) : [1,4,4,4]->[1,4,4,4]\\n"
)
pipeline = parse_pipeline("fold-batchnorm,annotate-quant{keep_first_last=false},shape-check")
r = PassManager(pipeline, verify_each=True).run(g)
assert r.changed and len(r.graph) == 2
assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None and m == "torch"]
print("ok")
"""


def test_ir_and_passes_import_without_torch() -> None:
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


ONNX_CODE = """
import sys
sys.modules["torch"] = None
import onnx
from onnx import TensorProto, helper
from jaqc.frontend import import_onnx
graph = helper.make_graph(
    [helper.make_node("Relu", ["x"], ["y"], name="act")],
    "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 7
g = import_onnx(model)
assert [layer.kind.value for layer in g] == ["input", "relu", "output"], [layer.kind.value for layer in g]
print("ok")
"""


def test_onnx_import_without_torch() -> None:
    result = subprocess.run([sys.executable, "-c", ONNX_CODE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
