"""Read the text form written by :func:`jaqc.ir.printer.print_graph` back into a :class:`LayerGraph`."""

from __future__ import annotations

import json
import re
from typing import Any

from attrs import fields

from .accelerator import AcceleratorConfig, check_hw_model
from .choice import Candidate, Choice
from .encoding import OPERATOR_FIELDS, PRINT_KEYS, OperatorVector
from .errors import IRError, ParseError
from .graph import LayerGraph
from .layer import Layer
from .mapping import Mapping
from .types import PARAMS_FOR_KIND, LayerCost, QuantSpec, Shape, Source, to_kind

_LAYER = re.compile(
    r"%(?P<name>[^\s=]+) = (?P<kind>[a-z0-9_]+)(?:\[(?P<params>[^\]]*)\])?(?:\((?P<inputs>[^)]*)\))? :(?P<rest>.*)"
)
_TOKEN = re.compile(r'(?:[^\s"]|"(?:[^"\\]|\\.)*")+')
_SHAPE = re.compile(r"\[([0-9,]*)\]")


def _unquote(text: str) -> str:
    return json.loads(text) if text.startswith('"') else text


def _shape(text: str) -> Shape:
    m = _SHAPE.fullmatch(text)
    if not m:
        raise IRError(f"bad shape {text!r}")
    return Shape(int(d) for d in m.group(1).split(",") if d)


def _shape_list(text: str) -> list[Shape]:
    return [_shape(s) for s in re.findall(r"\[[0-9,]*\]", text)]


def _braced(text: str, prefix: str) -> str:
    if not (text.startswith(prefix + "{") and text.endswith("}")):
        raise IRError(f"expected {prefix}{{...}}, got {text!r}")
    return text[len(prefix) + 1 : -1]


def _floats(text: str) -> tuple[float, ...]:
    body = _braced(text, "")
    return tuple(float(v) for v in body.split(",") if v)


def _params(kind_name: str, text: str | None) -> Any:
    kind = to_kind(kind_name)
    cls = PARAMS_FOR_KIND.get(kind)
    if cls is None:
        if text:
            raise IRError(f"kind {kind_name} takes no parameters, got [{text}]")
        return None
    by_key = {f.metadata["key"]: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for item in (text or "").split(","):
        if not item:
            continue
        key, _, raw = item.partition("=")
        f = by_key.get(key)
        if f is None:
            raise IRError(f"unknown parameter {key!r} for {kind_name}; known: {', '.join(by_key)}")
        fmt = f.metadata["fmt"]
        if fmt == "flag":
            values[f.name] = True
        elif fmt == "pair":
            values[f.name] = tuple(int(v) for v in raw.split("x")) if "x" in raw else int(raw)
        elif fmt == "float":
            values[f.name] = float(raw)
        else:
            values[f.name] = int(raw)
    return cls(**values)


def _kv(body: str) -> dict[str, str]:
    out = {}
    for item in body.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise IRError(f"expected key=value, got {item!r}")
        out[key] = value
    return out


def parse_layer(line: str) -> tuple[Layer, bool]:
    """Parse one layer line; returns the layer (a choice layer without candidates yet) and whether the
    line opens a candidate block."""
    m = _LAYER.fullmatch(line)
    if not m:
        raise IRError("expected '%name = kind[params](%inputs) : ...'")
    rest = m.group("rest").strip()
    opens = rest.endswith("{")
    if opens:
        rest = rest[:-1].rstrip()
    main, _, src = rest.partition(" ;")
    if rest.startswith(";"):
        main, src = "", rest[1:]
    inputs = [s.strip() for s in (m.group("inputs") or "").split(",") if s.strip()]
    if any(not s.startswith("%") for s in inputs):
        raise IRError(f"inputs must be written %name, got ({m.group('inputs')})")
    fields_: dict[str, Any] = {
        "name": m.group("name"),
        "kind": m.group("kind"),
        "inputs": [s[1:] for s in inputs],
        "params": _params(m.group("kind"), m.group("params")),
    }
    tile: dict[str, int] | None = None
    order: list[str] | None = None
    bits: tuple[int, ...] | None = None
    for tok in _TOKEN.findall(main):
        if tok.startswith("["):
            ins, arrow, out = tok.partition("->")
            if arrow:
                fields_["input_shapes"] = _shape_list(ins)
                fields_["output_shape"] = _shape(out)
            else:
                fields_["output_shape"] = _shape(tok)
        elif tok.startswith("tile{"):
            tile = {k.upper(): int(v) for k, v in _kv(_braced(tok, "tile")).items()}
        elif tok.startswith("order="):
            order = tok[len("order=") :].upper().split(">")
        elif tok.startswith("cost{"):
            kv = _kv(_braced(tok, "cost"))
            fields_["cost"] = LayerCost(
                compute_cycles=int(kv["compute"]),
                stall_cycles=int(kv["stall"]),
                energy_nJ=float(kv["energy_nJ"]),
            )
        elif tok.startswith("enc{"):
            kv = _kv(_braced(tok, "enc"))
            fields_["op_vector"] = OperatorVector(**{f: int(kv[k]) for f, k in zip(OPERATOR_FIELDS, PRINT_KEYS)})
        elif tok.startswith("csq{"):
            fields_["csq_channels"] = [int(v) for v in _braced(tok, "csq").split(",") if v]
        elif tok.startswith("bits={"):
            bits = tuple(int(v) for v in _braced(tok, "bits=").split(","))
        elif re.fullmatch(r"w(\d+|f)a(\d+|f)", tok):
            fields_["quant"] = QuantSpec.parse(tok)
        else:
            raise IRError(f"unexpected token {tok!r}")
    if "output_shape" not in fields_:
        raise IRError("missing shapes ([in]->[out] or [out])")
    if (tile is None) != (order is None):
        raise IRError("a mapping needs both tile{...} and order=...")
    if tile is not None:
        fields_["mapping"] = Mapping(tile=tile, loop_order=order)
    if src.strip():
        kv = {k: _unquote(v) for k, _, v in (t.partition("=") for t in _TOKEN.findall(src))}
        fields_["source"] = Source(fx_node=kv.get("fx", ""), module=kv.get("module", ""))
    if opens:
        fields_["meta"] = {"_bits": bits}
    elif bits is not None:
        raise IRError("bits={...} belongs to a choice layer with a candidate block")
    return _deferred_layer(fields_, opens), opens


def _deferred_layer(fields_: dict[str, Any], opens: bool) -> Layer:
    if opens:
        # The Choice is attached once its candidate block is read; build with a placeholder.
        placeholder = Choice(candidates=[Candidate(op="_", graph=LayerGraph("_"))])
        layer = Layer(**fields_, choice=placeholder)
        return layer
    return Layer(**fields_)


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines = [
            (n, raw) for n, raw in enumerate(text.splitlines(), 1) if raw.strip() and not raw.lstrip().startswith("#")
        ]
        self.pos = 0

    def error(self, lineno: int, msg: str) -> ParseError:
        return ParseError(f"{self.source}:{lineno}: {msg}")

    def graph(self, name: str, top: bool) -> LayerGraph:
        graph = LayerGraph(name)
        while self.pos < len(self.lines):
            lineno, raw = self.lines[self.pos]
            line = raw.strip()
            if line == "}":
                if top:
                    raise self.error(lineno, "unmatched '}'")
                return graph
            self.pos += 1
            try:
                if top and line.startswith("graph ") and len(graph) == 0:
                    graph.name = _unquote(line[len("graph ") :].strip())
                elif top and line.startswith("accelerator ") and len(graph) == 0:
                    kv = {k: _unquote(v) for k, _, v in (t.partition("=") for t in _TOKEN.findall(line[12:]))}
                    graph.accelerator = AcceleratorConfig.from_text_fields(kv)
                elif top and line.startswith("hw_model ") and len(graph) == 0:
                    graph.hw_model = check_hw_model(line[len("hw_model ") :].strip())
                elif line.startswith("%"):
                    layer, opens = parse_layer(line)
                    if opens:
                        layer.choice = self.candidates(layer, lineno)
                        layer.meta.pop("_bits", None)
                    graph.add(layer)
                else:
                    raise IRError("expected a layer line starting with '%'")
            except ParseError:
                raise
            except (IRError, ValueError, KeyError, TypeError) as exc:
                raise self.error(lineno, f"{exc}") from None
        if not top:
            raise self.error(self.lines[-1][0], "unterminated block: missing '}'")
        return graph

    def candidates(self, layer: Layer, lineno: int) -> Choice:
        candidates = []
        while True:
            if self.pos >= len(self.lines):
                raise self.error(lineno, f"choice layer %{layer.name}: missing '}}'")
            n, raw = self.lines[self.pos]
            line = raw.strip()
            self.pos += 1
            if line == "}":
                break
            if not (line.startswith("candidate ") and line.endswith("{")):
                raise self.error(n, "expected 'candidate OP ... {' inside a choice block")
            toks = _TOKEN.findall(line[len("candidate ") : -1])
            op = _unquote(toks[0])
            kv = dict(t.partition("=")[::2] for t in toks[1:])
            try:
                graph = self.graph(f"{layer.name}.{op}", top=False)
                self.pos += 1  # the closing '}' of the candidate
                candidates.append(
                    Candidate(
                        op=op,
                        graph=graph,
                        alpha=float(kv["alpha"]) if "alpha" in kv else None,
                        beta_w=_floats(kv["beta_w"]) if "beta_w" in kv else None,
                        beta_a=_floats(kv["beta_a"]) if "beta_a" in kv else None,
                    )
                )
            except ParseError:
                raise
            except (IRError, ValueError) as exc:
                raise self.error(n, str(exc)) from None
        bits = layer.meta.get("_bits")
        try:
            return Choice(candidates=candidates, bits=bits) if bits else Choice(candidates=candidates)
        except IRError as exc:
            raise self.error(lineno, f"choice layer %{layer.name}: {exc}") from None


def parse(text: str, source: str = "<text>") -> LayerGraph:
    """Parse the text form; errors name ``source`` and the line number."""
    parser = _Parser(text, source)
    return parser.graph("graph", top=True)
