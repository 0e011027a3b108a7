"""Run a LayerGraph with weights as a torch module: the reference for numeric-equivalence checks.

:class:`GraphExecutor` interprets the graph layer by layer with ``torch.nn.functional``; it needs the
weights of conv2d, linear and batchnorm layers. Quantization annotations are ignored (float execution).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from jaqc.core import JaqcError
from jaqc.ir import Layer, LayerGraph, LayerKind

_ACTIVATIONS = {
    LayerKind.RELU: F.relu,
    LayerKind.RELU6: F.relu6,
    LayerKind.HARDSWISH: F.hardswish,
    LayerKind.HARDSIGMOID: F.hardsigmoid,
    LayerKind.SILU: F.silu,
    LayerKind.SIGMOID: torch.sigmoid,
}


class GraphExecutor(nn.Module):
    """A torch module that computes what ``graph`` describes, from the weights the graph carries."""

    def __init__(self, graph: LayerGraph) -> None:
        super().__init__()
        self.graph = graph
        self.order = graph.topo_order()
        self.tensors = nn.ParameterDict()
        for layer in self.order:
            for key, array in layer.weights.items():
                self.tensors[self._key(layer, key)] = nn.Parameter(torch.from_numpy(array.copy()), requires_grad=False)
            needed = {"weight"} if layer.kind in (LayerKind.CONV2D, LayerKind.LINEAR) else set()
            if layer.kind is LayerKind.BATCHNORM:
                needed = {"weight", "bias", "running_mean", "running_var"}
            missing = needed - set(layer.weights)
            if missing:
                raise JaqcError(f"layer %{layer.name} has no weights {sorted(missing)}; import the model with weights")

    @staticmethod
    def _key(layer: Layer, key: str) -> str:
        return f"{layer.name}::{key}".replace(".", "__")

    def _w(self, layer: Layer, key: str) -> torch.Tensor | None:
        name = self._key(layer, key)
        return self.tensors[name] if name in self.tensors else None

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        values: dict[str, torch.Tensor] = {}
        graph_inputs = self.graph.inputs()
        if len(inputs) != len(graph_inputs):
            raise JaqcError(f"graph {self.graph.name!r} takes {len(graph_inputs)} input(s), got {len(inputs)}")
        for layer, tensor in zip(graph_inputs, inputs):
            values[layer.name] = tensor
        outputs = []
        for layer in self.order:
            if layer.kind is LayerKind.INPUT:
                continue
            args = [values[i] for i in layer.inputs]
            values[layer.name] = out = self._apply(layer, args)
            if layer.kind is LayerKind.OUTPUT:
                outputs.append(out)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _apply(self, layer: Layer, args: list[torch.Tensor]) -> torch.Tensor:
        k, p, x = layer.kind, layer.params, args[0]
        if k is LayerKind.CONV2D:
            return F.conv2d(x, self._w(layer, "weight"), self._w(layer, "bias"), p.stride, p.padding, 1, p.groups)
        if k is LayerKind.LINEAR:
            return F.linear(x, self._w(layer, "weight"), self._w(layer, "bias"))
        if k is LayerKind.BATCHNORM:
            return F.batch_norm(
                x,
                self._w(layer, "running_mean"),
                self._w(layer, "running_var"),
                self._w(layer, "weight"),
                self._w(layer, "bias"),
                False,
                0.0,
                p.eps,
            )
        if k in _ACTIVATIONS:
            return _ACTIVATIONS[k](x)
        if k is LayerKind.ADD:
            return x + args[1]
        if k is LayerKind.MUL:
            return x * args[1]
        if k is LayerKind.MAXPOOL:
            return F.max_pool2d(x, p.kernel, p.stride, p.padding, ceil_mode=p.ceil)
        if k is LayerKind.AVGPOOL:
            return F.avg_pool2d(x, p.kernel, p.stride, p.padding, ceil_mode=p.ceil)
        if k is LayerKind.GLOBAL_AVGPOOL:
            return x.mean((2, 3), keepdim=layer.output_shape.rank == 4)
        if k in (LayerKind.FLATTEN, LayerKind.RESHAPE):
            return x.reshape(layer.output_shape.dims)
        if k is LayerKind.CONCAT:
            return torch.cat(args, dim=p.axis)
        if k is LayerKind.CHANNEL_SHUFFLE:
            return _shuffle(x, p.groups)
        if k is LayerKind.SLICE:
            return x.narrow(p.axis, p.start, p.end - p.start)
        if k in (LayerKind.IDENTITY, LayerKind.OUTPUT):
            return x
        raise JaqcError(f"layer %{layer.name}: the executor cannot run kind {k.value}")


def _shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)
