"""Frontend errors: an fx node the importer cannot translate, a model spec that cannot be loaded."""

from __future__ import annotations

import re
from pathlib import Path

import torch.fx as fx

from jaqc.core import JaqcError

_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_TORCH_DIR = str(Path(__import__("torch").__file__).parent)
_JAQC_DIR = str(Path(__file__).parents[1])


class ImportErrorIR(JaqcError):
    """The importer met an fx node it cannot translate; the message names the node, op, target, module."""


class ModelLoadError(JaqcError):
    """A MODEL argument (file:factory, module:factory, saved IR) could not be loaded."""


def user_location(node: fx.Node) -> str:
    """``file.py:LINE`` of the model code that created ``node``, or ``""`` when unknown."""
    frames = _FRAME.findall(node.meta.get("stack_trace") or "")
    for path, line in reversed(frames):
        if not path.startswith((_TORCH_DIR, _JAQC_DIR)):
            return f"{path}:{line}"
    return ""


def module_path(node: fx.Node) -> str:
    """The module path of ``node``: its target for call_module, else the innermost enclosing module."""
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    return str(list(stack.values())[-1][0]) if stack else ""


def describe(node: fx.Node) -> str:
    """``fx node 'add_1' (call_function add, module 'layer1.0', model.py:42)``."""
    target = getattr(node.target, "__name__", None) or str(node.target)
    parts = [f"{node.op} {target}"]
    mod = module_path(node)
    if mod:
        parts.append(f"module '{mod}'")
    loc = user_location(node)
    if loc:
        parts.append(loc)
    return f"fx node '{node.name}' ({', '.join(parts)})"
