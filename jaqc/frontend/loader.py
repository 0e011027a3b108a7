"""Resolve a MODEL argument: ``path/to/file.py:factory``, ``package.module:factory``, or a saved IR.

Saved IR: a ``.json`` file (JSON form) or a ``.jaqc`` file (text form). Factories are called without
arguments and must return an ``nn.Module`` (a class works as its own factory).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch.nn as nn

from jaqc.core import JaqcError
from jaqc.ir import LayerGraph, load_graph
from jaqc.ir.values import to_int, to_list

from .errors import ModelLoadError
from .importer import import_model

IR_SUFFIXES = (".json", ".jaqc")


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,3,32,32"`` -> ``(1, 3, 32, 32)``, with a clear error for anything else."""
    try:
        dims = tuple(int(p) for p in text.split(","))
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise JaqcError(f"bad input shape {text!r}: expected comma-separated positive integers such as 1,3,32,32")
    return dims


def _import_file(path: Path, spec: str, label: str):  # type: ignore[no-untyped-def]
    if not path.is_file():
        raise ModelLoadError(f"{label} {spec!r}: no such file {path}")
    name = f"_jaqc_model_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ModelLoadError(f"{label} {spec!r}: cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise ModelLoadError(f"{label} {spec!r}: importing {path} raised {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(path.parent.resolve()))
    return module


def load_callable(spec: str, label: str = "MODEL") -> Callable[..., Any]:
    """The callable ``spec`` names (``file.py:name`` or ``package.module:name``); errors start with
    ``label`` and the spec."""
    where, sep, factory_name = spec.rpartition(":")
    if not sep or not where or not factory_name:
        raise ModelLoadError(
            f"{label} {spec!r}: expected path/to/file.py:factory, package.module:factory"
            + (", or a .json/.jaqc IR file" if label == "MODEL" else "")
        )
    if where.endswith(".py") or "/" in where or "\\" in where:
        module = _import_file(Path(where), spec, label)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ModelLoadError(f"{label} {spec!r}: cannot import module {where!r}: {exc}") from exc
    factory = getattr(module, factory_name, None)
    if factory is None or not callable(factory):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ModelLoadError(
            f"{label} {spec!r}: no factory {factory_name!r} in {where} (callables there: {', '.join(found) or 'none'})"
        )
    return factory  # type: ignore[no-any-return]


def load_module(spec: str) -> nn.Module:
    """Call the factory named by ``spec`` (``file.py:factory`` or ``package.module:factory``)."""
    factory = load_callable(spec)
    factory_name = spec.rpartition(":")[2]
    try:
        model = factory()
    except Exception as exc:
        raise ModelLoadError(f"MODEL {spec!r}: {factory_name}() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"MODEL {spec!r}: {factory_name}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _example_shape(model: nn.Module, spec: str) -> tuple[int, ...]:
    """The model's ``example_input_shape`` (default 1,3,32,32), checked: a sequence of positive integers."""
    value = getattr(model, "example_input_shape", (1, 3, 32, 32))
    try:
        dims = tuple(to_int(d, "dimension", 1) for d in to_list(value, "shape"))
    except JaqcError:
        dims = ()
    if not dims:
        raise ModelLoadError(
            f"MODEL {spec!r}: example_input_shape must be a sequence of positive integers such as (1, 3, 32, 32), "
            f"got {value!r}; or give --input-shape"
        )
    return dims


def load_graph_spec(spec: str, input_shape: Sequence[int] | None = None, with_weights: bool = True) -> LayerGraph:
    """The LayerGraph for any MODEL argument (saved IR is read; an ONNX model is imported; a torch model is
    traced). A file that exists is read as a file even when its name holds ':' (``run:3.json``)."""
    path = Path(spec)
    file_like = ":" not in spec or path.exists()  # 'pkg.mod:factory' and 'file.py:factory' name factories
    if path.suffix in (*IR_SUFFIXES, ".onnx") and file_like and path.is_dir():
        raise ModelLoadError(f"MODEL {spec!r}: is a directory, not a {path.suffix} file")
    if path.suffix in IR_SUFFIXES and file_like:
        if input_shape is not None:
            raise ModelLoadError(
                f"MODEL {spec!r}: --input-shape applies to torch and ONNX models; a saved IR has its own"
            )
        return load_graph(path)
    if path.suffix == ".onnx" and file_like:  # an ONNX CNN (jaqc.frontend.onnx_import)
        from .onnx_import import import_onnx

        return import_onnx(path, input_shape=input_shape, with_weights=with_weights)
    model = load_module(spec)
    shape = tuple(input_shape) if input_shape else _example_shape(model, spec)
    name = spec.rpartition(":")[2]
    return import_model(model, shape, name=name, with_weights=with_weights)
