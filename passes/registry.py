"""Pass registry: built-in pass names, plugins from the ``jaqc.passes`` entry-point group, and pipeline
strings such as ``fold-batchnorm,annotate-quant{w_bits=4,a_bits=8}``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import attrs

from jaqc.core import JaqcError

from .base import Pass, PassError

#: Built-in passes: name -> "module:Class" (imported on first use so unused passes cost nothing).
BUILTIN_PASSES: dict[str, str] = {
    "fold-batchnorm": "jaqc.passes.fold_batchnorm:FoldBatchNorm",
    "annotate-quant": "jaqc.passes.annotate_quant:AnnotateQuant",
    "shape-check": "jaqc.passes.shape_check:ShapeCheck",
    "extract-subnet": "jaqc.passes.extract_subnet:ExtractSubnet",
    "csq-instrument": "jaqc.passes.csq_instrument:CsqInstrument",
    "encode-layers": "jaqc.passes.encode_layers:EncodeLayers",
    "batchtile": "jaqc.passes.batchtile:BatchTile",
    "export-schedule": "jaqc.passes.export_schedule:ExportSchedule",
    "export-onnx": "jaqc.passes.export_onnx:ExportOnnx",
    "generate-accelerator": "jaqc.passes.generate_accelerator:GenerateAccelerator",
    "design-accelerator": "jaqc.passes.generate_accelerator:DesignAccelerator",
}

ENTRY_POINT_GROUP = "jaqc.passes"

_extra: dict[str, Callable[[], type[Pass]]] = {}


def register(cls: type[Pass]) -> type[Pass]:
    """Register a pass class in this process (plugins normally use the entry-point group instead)."""
    if not cls.name:
        raise PassError(f"pass class {cls.__name__} has no name")
    _extra[cls.name] = lambda: cls
    return cls


def _load_ref(ref: str) -> type[Pass]:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_passes() -> list[str]:
    """Every pass name: built-in, registered in-process and installed plugins, sorted."""
    return sorted(set(BUILTIN_PASSES) | set(_extra) | set(_plugins()))


def get_pass_class(name: str) -> type[Pass]:
    """The pass class registered under ``name``; a clear error lists the known names."""
    if name in _extra:
        cls = _extra[name]()
    elif name in BUILTIN_PASSES:
        cls = _load_ref(BUILTIN_PASSES[name])
    else:
        plugins = _plugins()
        if name not in plugins:
            raise PassError(f"unknown pass {name!r}; available: {', '.join(available_passes())}")
        try:
            cls = plugins[name].load()
        except Exception as exc:  # a broken plugin must not hide behind a traceback
            raise PassError(f"pass plugin {name!r} ({plugins[name].value}) failed to load: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Pass)):
        raise PassError(f"pass {name!r} does not resolve to a jaqc.passes.Pass subclass")
    return cls


def _convert(value: str, field: attrs.Attribute, pass_name: str) -> Any:
    kind = field.type if isinstance(field.type, type) else str(field.type)
    text = value.strip()
    low = text.lower()
    if low in ("none", "null") and "None" in str(kind):
        return None
    if kind in (bool, "bool") or str(kind).startswith("bool"):
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise PassError(f"pass {pass_name}: option {field.name} expects true/false, got {value!r}")
    for typ in (int, float):
        if kind in (typ, typ.__name__) or str(kind).startswith(typ.__name__):
            try:
                return typ(text)
            except ValueError:
                raise PassError(
                    f"pass {pass_name}: option {field.name} expects {typ.__name__}, got {value!r}"
                ) from None
    return text


def make_pass(name: str, options: dict[str, str] | None = None) -> Pass:
    """Instantiate pass ``name`` with string options converted to the option fields' types."""
    cls = get_pass_class(name)
    known = {f.name: f for f in attrs.fields(cls)}
    kwargs = {}
    for key, value in (options or {}).items():
        if key not in known:
            raise PassError(f"pass {name}: unknown option {key!r}; options are {', '.join(known) or 'none'}")
        kwargs[key] = _convert(value, known[key], name)
    try:
        return cls(**kwargs)
    except PassError:
        raise
    except (TypeError, ValueError, JaqcError) as exc:
        raise PassError(f"pass {name}: {exc}") from None


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise PassError(f"pipeline {text!r}: unmatched '}}'")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise PassError(f"pipeline {text!r}: unmatched '{{'")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_pipeline(text: str) -> list[Pass]:
    """``"p1,p2{opt=v,opt2=w}"`` -> pass instances, in order."""
    passes = []
    for item in _split_top(text):
        name, brace, rest = item.partition("{")
        options: dict[str, str] = {}
        if brace:
            if not rest.endswith("}"):
                raise PassError(f"pipeline item {item!r}: options must end with '}}'")
            for opt in _split_top(rest[:-1]):
                key, eq, value = opt.partition("=")
                if not eq:
                    raise PassError(f"pipeline item {item!r}: expected option=value, got {opt!r}")
                options[key.strip()] = value.strip()
        passes.append(make_pass(name.strip(), options))
    return passes


def providers(condition: str) -> list[str]:
    """The built-in and registered passes that provide ``condition`` (for the manager's hints), sorted."""
    names = []
    for name in sorted(set(BUILTIN_PASSES) | set(_extra)):
        try:
            cls = get_pass_class(name)
        except PassError:
            continue
        if condition in getattr(cls, "provides", ()):
            names.append(name)
    return names
