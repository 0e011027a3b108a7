"""``verify(graph)``: check the IR's invariants and report every broken one, naming the layer."""

from __future__ import annotations

import math

import networkx as nx

from .errors import IRError, VerifyError
from .graph import LayerGraph
from .layer import Layer
from .mapping import LOOP_DIMS, group_aligned
from .shape_rules import arity, infer_output_shape
from .types import LayerKind

#: Tolerance for probability vectors summing to one.
PROB_TOL = 1e-4


def _weight_shapes(layer: Layer) -> dict[str, tuple[int, ...]]:
    if layer.kind is LayerKind.CONV2D:
        p = layer.params
        shapes = {"weight": (layer.out_channels, layer.in_channels // p.groups, *p.kernel)}
        if p.bias:
            shapes["bias"] = (layer.out_channels,)
        return shapes
    if layer.kind is LayerKind.LINEAR:
        shapes = {"weight": (layer.out_channels, layer.in_channels)}
        if layer.params.bias:
            shapes["bias"] = (layer.out_channels,)
        return shapes
    if layer.kind is LayerKind.BATCHNORM:
        c = (layer.output_shape[1],)
        return {"weight": c, "bias": c, "running_mean": c, "running_var": c}
    return {}


def loop_extents(layer: Layer, hw_model: str | None = None) -> dict[str, int]:
    """The extent of each tiled loop (B, OW, OH, IC, OC) of a conv2d or linear layer under a hardware model:
    one group's (the simulator, and None), or with OC over every group's output channels (deployment)."""
    out = layer.output_shape
    if layer.kind is LayerKind.CONV2D:
        g = layer.params.groups
        oc = out[1] if hw_model == "deployment" else out[1] // g
        return {"B": out[0], "OW": out[3], "OH": out[2], "IC": layer.in_channels // g, "OC": oc}
    batch = math.prod(out.dims[:-1])
    return {"B": batch, "OW": 1, "OH": 1, "IC": layer.in_channels, "OC": layer.out_channels}


def _check_probs(values: tuple[float, ...], what: str, problems: list[str], size: int | None = None) -> None:
    if size is not None and len(values) != size:
        problems.append(f"{what} has {len(values)} entries, expected {size}")
    if any(v < 0 or v > 1 for v in values) or abs(sum(values) - 1.0) > PROB_TOL:
        problems.append(f"{what} is not a probability vector: {list(values)}")


def _layer_problems(graph: LayerGraph, layer: Layer) -> list[str]:
    problems: list[str] = []
    lo, hi = arity(layer.kind)
    n = len(layer.inputs)
    if n < lo or (hi is not None and n > hi):
        want = f"{lo}" if lo == hi else f"at least {lo}"
        problems.append(f"{layer.kind.value} takes {want} input(s), has {n}")
        return problems
    for operand, shape in zip(layer.inputs, layer.input_shapes):
        produced = graph[operand].output_shape
        if produced != shape:
            problems.append(f"input %{operand} has shape {produced} but the layer expects {shape}")
    try:
        expected = infer_output_shape(layer)
    except IRError as exc:
        problems.append(str(exc))
        expected = None
    if expected is not None and expected != layer.output_shape:
        problems.append(f"output shape {layer.output_shape} does not match {layer.kind.value} rule {expected}")
    if layer.kind in (LayerKind.RESHAPE, LayerKind.FLATTEN) and layer.output_shape.numel() != layer.input_shape.numel():
        problems.append(f"{layer.kind.value} changes the element count: {layer.input_shape} -> {layer.output_shape}")
    if problems:  # the checks below read channels and extents from the shapes, which are not consistent
        return problems
    for key, shape in _weight_shapes(layer).items():
        if key in layer.weights and tuple(layer.weights[key].shape) != shape:
            problems.append(f"weight {key!r} has shape {list(layer.weights[key].shape)}, expected {list(shape)}")
    if layer.csq_channels is not None:
        chans = layer.csq_channels
        limit = layer.input_shape[1] if layer.input_shapes else 0
        if list(chans) != sorted(set(chans)) or any(c < 0 or c >= limit for c in chans):
            problems.append(f"csq channels must be sorted, unique and in [0, {limit}), got {list(chans)}")
    if layer.mapping is not None:
        if layer.kind not in (LayerKind.CONV2D, LayerKind.LINEAR):
            problems.append(f"a mapping is only valid on conv2d and linear layers, not {layer.kind.value}")
        else:
            extents = loop_extents(layer, graph.hw_model)
            for dim, tile in zip(LOOP_DIMS, layer.mapping.tile):
                if tile > extents[dim.value]:
                    problems.append(f"tile {dim.value}={tile} is larger than its dimension {extents[dim.value]}")
            if graph.hw_model == "deployment" and layer.kind is LayerKind.CONV2D and layer.params.groups > 1:
                per_group, oc_tile = extents["OC"] // layer.params.groups, layer.mapping.tile[4]
                if not group_aligned(oc_tile, per_group):
                    problems.append(
                        f"tile OC={oc_tile} is not group-aligned (it must divide or be a multiple of the "
                        f"{per_group} output channels per group)"
                    )
    if layer.choice is not None:
        problems.extend(_choice_problems(layer))
    return problems


def _choice_problems(layer: Layer) -> list[str]:
    problems: list[str] = []
    choice = layer.choice
    alphas = [c.alpha for c in choice.candidates]
    if any(a is not None for a in alphas):
        if any(a is None for a in alphas):
            problems.append("alpha is set on some candidates but not all")
        else:
            _check_probs(tuple(alphas), "alpha over candidates", problems)  # type: ignore[arg-type]
    for cand in choice.candidates:
        where = f"candidate {cand.op}"
        for label, vec in (("beta_w", cand.beta_w), ("beta_a", cand.beta_a)):
            if vec is not None:
                _check_probs(vec, f"{where} {label}", problems, size=len(choice.bits))
        ins, outs = cand.graph.inputs(), cand.graph.outputs()
        if len(ins) != 1 or len(outs) != 1:
            problems.append(f"{where} needs exactly one input and one output layer")
            continue
        if ins[0].output_shape != layer.input_shape:
            problems.append(f"{where} input shape {ins[0].output_shape} differs from {layer.input_shape}")
        if outs[0].output_shape != layer.output_shape:
            problems.append(f"{where} output shape {outs[0].output_shape} differs from {layer.output_shape}")
        try:
            verify(cand.graph)
        except VerifyError as exc:
            problems.append(f"{where}: {exc}")
    return problems


def verify(graph: LayerGraph) -> LayerGraph:
    """Check every invariant of ``graph``; raise :class:`VerifyError` listing all problems, else return it.

    Checked: acyclicity, at least one input, operand counts, input shapes equal their producers' outputs,
    output shapes follow each kind's rule, weight tensor shapes, CSQ channel sets in range, mapping tiles
    within their loop extents, and for choice layers the candidate sub-graphs and probability vectors.
    (Bitwidths are legal by construction of ``QuantSpec``; buffer fit is checked by the cost model.)
    """
    problems: list[str] = []
    if not nx.is_directed_acyclic_graph(graph._g):
        raise VerifyError(f"graph {graph.name!r} has a cycle")
    if len(graph) and not graph.inputs():
        problems.append(f"graph {graph.name!r} has no input layer")
    for layer in graph.topo_order():
        problems.extend(f"layer %{layer.name}: {p}" for p in _layer_problems(graph, layer))
    if problems:
        shown = problems[:20]
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise VerifyError(f"graph {graph.name!r} failed verification:\n  " + "\n  ".join(shown) + more)
    return graph
