"""The per-layer facts HAQ's state is built from (:class:`LayerInfo`), and reading them off a ``LayerGraph``."""

from __future__ import annotations

from typing import Any

from attrs import field, frozen

from jaqc.ir import LayerGraph, LayerKind

from .errors import HaqError


def _at_least(minimum: int):  # type: ignore[no-untyped-def]
    def check(_inst: object, attribute: Any, value: int) -> None:
        if value < minimum:
            raise HaqError(f"LayerInfo.{attribute.name} must be >= {minimum}, got {value}")

    return check


@frozen(kw_only=True)
class LayerInfo:
    """One quantizable layer (conv2d or linear) as HAQ's agent sees it.

    ``index`` is the layer's position among the network's quantizable layers; ``weight_count`` counts the weight
    tensor's elements (no bias); ``in_fmap_size`` and ``out_fmap_size`` are the input and output feature maps'
    height × width (1 for a linear layer over a ``[N, C]`` input). A linear layer is described as a 1×1 kernel
    with stride 1.
    """

    index: int = field(converter=int, validator=_at_least(0))
    is_depthwise: bool = field(converter=bool)
    in_channels: int = field(converter=int, validator=_at_least(1))
    out_channels: int = field(converter=int, validator=_at_least(1))
    stride: int = field(converter=int, validator=_at_least(1))
    kernel: int = field(converter=int, validator=_at_least(1))
    weight_count: int = field(converter=int, validator=_at_least(1))
    in_fmap_size: int = field(converter=int, validator=_at_least(1))
    #: The output feature map's height × width (from the IR's output shape, never guessed from the stride).
    out_fmap_size: int = field(converter=int, validator=_at_least(1))

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one forward pass for one image (weight count × output positions)."""
        return self.weight_count * self.out_fmap_size


def layer_infos_from_graph(graph: LayerGraph) -> list[LayerInfo]:
    """The conv2d and linear layers of ``graph`` in topological order, as :class:`LayerInfo`.

    A depthwise convolution is one with ``groups == in_channels > 1``. Kernel and stride are the height
    components (HAQ's state uses one number each). A graph with choice layers (a supernet) is rejected: derive
    the subnet first.
    """
    choices = graph.layers_of(LayerKind.CHOICE)
    if choices:
        raise HaqError(
            f"graph {graph.name!r} has {len(choices)} choice layer(s) (e.g. {choices[0].name}); "
            "HAQ searches a fixed network: extract the subnet first"
        )
    layers = graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)
    if not layers:
        raise HaqError(f"graph {graph.name!r} has no conv2d or linear layer to quantize")
    infos = []
    for index, layer in enumerate(layers):
        in_channels, out_channels = layer.in_channels, layer.out_channels
        if layer.kind is LayerKind.CONV2D:
            params = layer.params
            kernel_h, kernel_w = params.kernel
            infos.append(
                LayerInfo(
                    index=index,
                    is_depthwise=params.groups == in_channels and in_channels > 1,
                    in_channels=in_channels,
                    out_channels=out_channels,
                    stride=params.stride[0],
                    kernel=kernel_h,
                    weight_count=out_channels * (in_channels // params.groups) * kernel_h * kernel_w,
                    in_fmap_size=layer.input_shape[2] * layer.input_shape[3],
                    out_fmap_size=layer.output_shape[2] * layer.output_shape[3],
                )
            )
        else:
            positions = 1
            for dim in layer.input_shape.dims[1:-1]:
                positions *= dim
            infos.append(
                LayerInfo(
                    index=index,
                    is_depthwise=False,
                    in_channels=in_channels,
                    out_channels=out_channels,
                    stride=1,
                    kernel=1,
                    weight_count=in_channels * out_channels,
                    in_fmap_size=positions,
                    out_fmap_size=positions,
                )
            )
    return infos
