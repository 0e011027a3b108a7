"""Hypothesis strategies and small builders for IR tests: random *valid* LayerGraphs."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from jaqc.ir import (
    LOOP_DIMS,
    OPERATOR_FIELDS,
    BatchNormParams,
    Candidate,
    Choice,
    ConcatParams,
    Conv2dParams,
    Layer,
    LayerCost,
    LayerGraph,
    LayerKind,
    LinearParams,
    Mapping,
    OperatorVector,
    PoolParams,
    QuantSpec,
    Shape,
    ShuffleParams,
    Source,
)
from jaqc.ir.shape_rules import infer_output_shape
from jaqc.ir.verify import loop_extents

ACTS = [
    LayerKind.RELU,
    LayerKind.RELU6,
    LayerKind.HARDSWISH,
    LayerKind.HARDSIGMOID,
    LayerKind.SILU,
    LayerKind.SIGMOID,
]
BITS = st.sampled_from([None, 2, 4, 8])
PROB = st.floats(min_value=0.01, max_value=1.0, allow_nan=False)


def add_layer(graph: LayerGraph, name: str, kind: LayerKind, inputs: list[str], params=None, out=None, **kw) -> Layer:
    """Add a layer whose output shape follows its kind's rule (``out`` for free-shaped kinds / conv OC)."""
    in_shapes = [graph[i].output_shape for i in inputs]
    probe = Layer(
        name=name,
        kind=kind,
        inputs=inputs,
        input_shapes=in_shapes,
        output_shape=out or in_shapes[0],
        params=params,
    )
    shape = infer_output_shape(probe) or out
    return graph.add(
        Layer(
            name=name,
            kind=kind,
            inputs=inputs,
            input_shapes=in_shapes,
            output_shape=shape,
            params=params,
            **kw,
        )
    )


def _probs(draw, n: int) -> tuple[float, ...]:
    raw = [draw(PROB) for _ in range(n)]
    total = sum(raw)
    return tuple(r / total for r in raw)


def _candidate_graph(shape: Shape, op: str, draw) -> LayerGraph:
    g = LayerGraph(op)
    g.add(Layer(name="in", kind=LayerKind.INPUT, output_shape=shape))
    last = "in"
    if op != "skip" and shape.rank == 4:
        k = draw(st.sampled_from([1, 3]))
        add_layer(g, "conv", LayerKind.CONV2D, ["in"], Conv2dParams(kernel=k, padding=k // 2), out=shape)
        add_layer(g, "act", LayerKind.RELU, ["conv"])
        last = "act"
    add_layer(g, "out", LayerKind.OUTPUT, [last])
    return g


@st.composite
def graphs(draw, max_layers: int = 12, weights: bool = False) -> LayerGraph:
    """A random valid graph with every kind of annotation."""
    n = draw(st.integers(1, 2))
    c = draw(st.integers(1, 12))
    hw = draw(st.integers(2, 12))
    g = LayerGraph(draw(st.sampled_from(["net", "my model", "g-1"])))
    g.add(Layer(name="x", kind=LayerKind.INPUT, output_shape=(n, c, hw, hw), source=Source("x", "")))
    rank4 = ["x"]
    count = 0
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    for i in range(draw(st.integers(1, max_layers))):
        src = draw(st.sampled_from(rank4))
        shape = g[src].output_shape
        op = draw(st.sampled_from(["conv", "bn", "act", "pool", "add", "concat", "shuffle", "choice"]))
        name = f"{op}{i}" if draw(st.booleans()) else f"blk.{i}.{op}"
        kw = {}
        if draw(st.booleans()):
            kw["source"] = Source(fx_node=f"{op}_{i}", module=draw(st.sampled_from(["", f"features.{i}"])))
        if op == "conv":
            k = draw(st.sampled_from([1, 3, 5]))
            s = draw(st.sampled_from([1, 2]))
            p = draw(st.sampled_from([0, k // 2]))
            if shape[2] + 2 * p < k:
                continue
            groups = draw(st.sampled_from([d for d in (1, 2, shape[1]) if shape[1] % d == 0]))
            oc = groups * draw(st.integers(1, 4))
            params = Conv2dParams(kernel=k, stride=s, padding=p, groups=groups, bias=draw(st.booleans()))
            kw["quant"] = draw(st.none() | st.builds(QuantSpec, BITS, BITS))
            layer = add_layer(g, name, LayerKind.CONV2D, [src], params, out=Shape((n, oc, 1, 1)), **kw)
            ext = loop_extents(layer)
            if draw(st.booleans()):
                tile = [draw(st.integers(1, ext[d.value])) for d in LOOP_DIMS]
                layer.mapping = Mapping(tile=tile, loop_order=draw(st.permutations(list(LOOP_DIMS))))
            if draw(st.booleans()):
                layer.cost = LayerCost(
                    compute_cycles=draw(st.integers(0, 10**9)),
                    stall_cycles=draw(st.integers(0, 10**6)),
                    energy_nJ=draw(st.floats(0, 1e9, allow_nan=False)),
                )
            if draw(st.booleans()):
                layer.op_vector = OperatorVector(**{f: draw(st.integers(1, 4096)) for f in OPERATOR_FIELDS})
            if draw(st.booleans()):
                layer.csq_channels = sorted(set(draw(st.lists(st.integers(0, shape[1] - 1), max_size=shape[1]))))
            if weights:
                layer.weights = {"weight": rng.standard_normal((oc, shape[1] // groups, k, k)).astype(np.float32)}
                if params.bias:
                    layer.weights["bias"] = rng.standard_normal(oc).astype(np.float32)
        elif op == "bn":
            add_layer(
                g,
                name,
                LayerKind.BATCHNORM,
                [src],
                BatchNormParams(eps=draw(st.sampled_from([1e-5, 1e-3, 0.1]))),
                **kw,
            )
        elif op == "act":
            add_layer(g, name, draw(st.sampled_from(ACTS)), [src], **kw)
        elif op == "pool":
            k = draw(st.sampled_from([1, 2, 3]))
            if shape[2] < k:
                continue
            kind = draw(st.sampled_from([LayerKind.AVGPOOL, LayerKind.MAXPOOL]))
            add_layer(
                g,
                name,
                kind,
                [src],
                PoolParams(kernel=k, stride=draw(st.sampled_from([1, 2])), ceil=draw(st.booleans())),
                **kw,
            )
        elif op == "add":
            same = [x for x in rank4 if g[x].output_shape == shape]
            add_layer(
                g,
                name,
                draw(st.sampled_from([LayerKind.ADD, LayerKind.MUL])),
                [src, draw(st.sampled_from(same))],
                **kw,
            )
        elif op == "concat":
            same = [x for x in rank4 if g[x].output_shape[2:] == shape[2:]]
            others = draw(st.lists(st.sampled_from(same), min_size=1, max_size=3))
            add_layer(g, name, LayerKind.CONCAT, [src, *others], ConcatParams(axis=1), **kw)
        elif op == "shuffle":
            groups = draw(st.sampled_from([d for d in (1, 2, 3) if shape[1] % d == 0]))
            add_layer(g, name, LayerKind.CHANNEL_SHUFFLE, [src], ShuffleParams(groups=groups), **kw)
        else:
            ops = draw(
                st.lists(
                    st.sampled_from(["k3_e1", "k5_e3", "skip", "k3_e1_g2"]),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            )
            bits = tuple(sorted(draw(st.sets(st.sampled_from([2, 4, 8]), min_size=1))))
            with_probs = draw(st.booleans())
            alphas = _probs(draw, len(ops)) if with_probs else (None,) * len(ops)
            cands = [
                Candidate(
                    op=o,
                    graph=_candidate_graph(shape, o, draw),
                    alpha=a,
                    beta_w=_probs(draw, len(bits)) if with_probs else None,
                    beta_a=_probs(draw, len(bits)) if with_probs else None,
                )
                for o, a in zip(ops, alphas)
            ]
            g.add(
                Layer(
                    name=name,
                    kind=LayerKind.CHOICE,
                    inputs=[src],
                    input_shapes=[shape],
                    output_shape=shape,
                    choice=Choice(candidates=cands, bits=bits),
                    **kw,
                )
            )
        rank4.append(name)
        count += 1
    last = draw(st.sampled_from(rank4))
    add_layer(g, "gap", LayerKind.GLOBAL_AVGPOOL, [last], out=Shape((n, g[last].output_shape[1])))
    add_layer(
        g,
        "fc",
        LayerKind.LINEAR,
        ["gap"],
        LinearParams(bias=True),
        out=Shape((n, 10)),
        quant=draw(st.none() | st.builds(QuantSpec, BITS, BITS)),
    )
    add_layer(g, "output", LayerKind.OUTPUT, ["fc"])
    return g
