"""Derived subnets: the network a search selects, as a torch model, and torch models built from the IR.

- :class:`DerivedSubnet` builds the network of a :class:`SupernetConfig`'s search space with one fixed op and one
  fixed (w_bits, a_bits) per block (stem, head and classifier as the config says), optionally taking its
  initial weights from the supernet it was derived from.
- :func:`build_subnet` builds a torch model from any plain LayerGraph (e.g. the output of the
  ``extract-subnet`` pass): one module per layer, registered at the layer's name, with the layer's weights.
  Tracing it (:func:`jaqc.nn.tracing.trace_model`) gives back the same IR.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import attrs
import torch
from torch import Tensor, nn

from jaqc.core import JaqcError
from jaqc.ir import LayerGraph, LayerKind
from jaqc.ir.layer import Layer

from .candidates import ChannelShuffle, ConvFactory
from .config import Clipping, FixedBits, QuantizerConfig, SupernetConfig
from .graph_ops import Add, Concat, GlobalAvgPool, Mul, Reshape, Slice
from .quant_linear import QuantLinear
from .quantizers import ActivationQuantizer
from .search_conv import SearchConv2d
from .space import space_candidate, space_of


class DerivedSubnet(nn.Module):
    """Stem → one fixed op per block → head → global pool → classifier of the config's space, with fixed bits."""

    def __init__(self, config: SupernetConfig, ops: Sequence[str], bits: Sequence[tuple[int, int] | None]) -> None:
        super().__init__()
        specs = config.block_specs()
        if len(ops) != len(specs) or len(bits) != len(specs):
            raise JaqcError(f"derived subnet: {len(specs)} blocks, but {len(ops)} ops and {len(bits)} bit pairs")
        quantizer = config.quant.quantizer
        self.config = config
        self.ops = tuple(ops)
        self.bits = tuple(None if b is None else (int(b[0]), int(b[1])) for b in bits)
        self.example_input_shape = (1, config.in_channels, config.input_size, config.input_size)
        self.ir_name = f"{config.name}-subnet"
        space = space_of(config)
        self.stem = space.stem()
        self.blocks = nn.ModuleList(
            space_candidate(
                space, op, index, cin, cout, stride, ConvFactory.fixed(None if b is None else FixedBits(*b), quantizer)
            )
            for index, (op, b, (cin, cout, stride)) in enumerate(zip(self.ops, self.bits, specs, strict=True))
        )
        self.head = space.head()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = space.classifier()

    def forward(self, x: Tensor) -> Tensor:
        out = self.stem(x)
        for block in self.blocks:
            out = block(out)
        out = self.pool(self.head(out))
        return self.classifier(torch.flatten(out, 1))

    def load_from_supernet(self, supernet: nn.Module) -> None:
        """Copy the shared weights of the chosen ops (and stem, head, classifier) from the supernet.

        Parameters and buffers are matched by name and shape; the per-bit parts of the search quantizers
        (several bit candidates) are left at their initial values.
        """
        own = self.state_dict()
        source = supernet.state_dict()
        updates = {}
        for name, value in own.items():
            if name.startswith("blocks."):
                index, rest = name.split(".", 2)[1:]
                key = f"blocks.{index}.candidates.{self.ops[int(index)]}.{rest}"
            else:
                key = name
            if key in source and source[key].shape == value.shape:
                updates[name] = source[key]
        self.load_state_dict({**own, **updates})


@contextmanager
def quantization_disabled(model: nn.Module) -> Iterator[None]:
    """Within the block, ``model``'s quantized convs and linears compute in floating point (no fake
    quantization; their activation quantizers observe nothing); afterwards they quantize as before."""
    layers = [m for m in model.modules() if isinstance(m, (SearchConv2d, QuantLinear))]
    before = [m.quantize for m in layers]
    for m in layers:
        m.quantize = False
    try:
        yield
    finally:
        for m, value in zip(layers, before, strict=True):
            m.quantize = value


#: How a retraining starts: the weights the subnet carries (a search's supernet weights), or drawn afresh.
RETRAIN_INITS: tuple[str, ...] = ("supernet", "scratch")


def reinitialize(model: nn.Module, seed: int) -> None:
    """Train ``model`` from scratch: every layer's parameters drawn afresh as torch initializes that layer
    (``reset_parameters``, seeded: the same draw for a seed), batch norms' running statistics reset, and every
    activation quantizer's range forgotten (the next training batch sets it, as in a new model)."""
    torch.manual_seed(seed)
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if module is not model and callable(reset):
            reset()
        if isinstance(module, ActivationQuantizer):
            module.set_initialized(False)


# --- torch models from the IR ----------------------------------------------------------------------------


def _tensor(layer: Layer, key: str) -> Tensor:
    if key not in layer.weights:
        raise JaqcError(f"build_subnet: layer %{layer.name} has no weights {key!r}; build from an IR with weights")
    return torch.from_numpy(layer.weights[key].copy())


def _load_act_state(module: nn.Module, layer: Layer) -> None:
    state = {
        k[len("act_quant.") :]: torch.from_numpy(v.copy())
        for k, v in layer.weights.items()
        if k.startswith("act_quant.")
    }
    quant = getattr(module, "act_quant", None)
    if quant is not None and state:
        quant.load_state_dict(state)


def stored_clipping(layer: Layer) -> str | None:
    """The activation clipping the layer's stored quantizer state was trained with (``minmax``, ``mse``, ``pact``),
    None when it stores none: a model traced from ``Clipping.MSE`` quantizers stores ``act_quant.clip_factor``,
    from PACT ones ``act_quant.clip_hi``, from min/max ones only the running range."""
    if "act_quant.clip_factor" in layer.weights:
        return Clipping.MSE.value
    if "act_quant.clip_hi" in layer.weights:
        return Clipping.PACT.value
    if "act_quant.running_max" in layer.weights:
        return Clipping.MINMAX.value
    return None


def _stored_clipping(layer: Layer, quantizer: QuantizerConfig | None) -> QuantizerConfig | None:
    """``quantizer`` with the activation clipping the layer's stored quantizer state was trained with (see
    :func:`stored_clipping`; a min/max state leaves ``quantizer`` as it is)."""
    found = stored_clipping(layer)
    if found in (None, Clipping.MINMAX.value):
        return quantizer
    stored = Clipping(found)
    base = quantizer or QuantizerConfig()
    return base if base.activation_clipping is stored else attrs.evolve(base, activation_clipping=stored)


def layer_module(layer: Layer, quantizer: QuantizerConfig | None = None) -> nn.Module | None:
    """The torch module computing one IR layer (``None`` for input and output layers); a quantized layer clips
    its activations as its stored quantizer state says (``quantizer`` gives the other settings)."""
    kind, p = layer.kind, layer.params
    quantizer = _stored_clipping(layer, quantizer)
    if kind in (LayerKind.INPUT, LayerKind.OUTPUT):
        return None
    if kind is LayerKind.CONV2D:
        q = layer.quant
        if q is not None and q.w_bits is not None and q.a_bits is not None:
            if p.kernel[0] != p.kernel[1] or p.stride[0] != p.stride[1] or p.padding[0] != p.padding[1]:
                raise JaqcError(
                    f"build_subnet: quantized layer %{layer.name} needs a square kernel, stride and padding, "
                    f"has kernel {p.kernel}, stride {p.stride}, padding {p.padding}"
                )
            module: nn.Module = SearchConv2d(
                layer.in_channels, layer.out_channels, p.kernel[0], p.stride[0], p.groups, mode="fixed",
                weight_bits=(q.w_bits,), activation_bits=(q.a_bits,), quantizer=quantizer, bias=p.bias,
                padding=p.padding[0],
            )  # fmt: skip
            if p.bias:
                module.bias.data.copy_(_tensor(layer, "bias"))
            _load_act_state(module, layer)
        else:
            module = nn.Conv2d(
                layer.in_channels, layer.out_channels, p.kernel, p.stride, p.padding, groups=p.groups, bias=p.bias
            )
            if p.bias:
                module.bias.data.copy_(_tensor(layer, "bias"))
        module.weight.data.copy_(_tensor(layer, "weight"))
        return module
    if kind is LayerKind.LINEAR:
        q = layer.quant
        if q is not None and q.w_bits is not None and q.a_bits is not None:
            module = QuantLinear(layer.in_channels, layer.out_channels, FixedBits(q.w_bits, q.a_bits), quantizer)
            _load_act_state(module, layer)
        else:
            module = nn.Linear(layer.in_channels, layer.out_channels, bias=p.bias)
        module.weight.data.copy_(_tensor(layer, "weight"))
        if module.bias is not None:
            module.bias.data.copy_(
                _tensor(layer, "bias") if "bias" in layer.weights else torch.zeros(layer.out_channels)
            )
        return module
    if kind is LayerKind.BATCHNORM:
        bn = nn.BatchNorm2d(layer.output_shape[1], eps=p.eps)
        for key in ("weight", "bias"):
            getattr(bn, key).data.copy_(_tensor(layer, key))
        bn.running_mean.copy_(_tensor(layer, "running_mean"))
        bn.running_var.copy_(_tensor(layer, "running_var"))
        return bn
    simple: dict[LayerKind, type[nn.Module]] = {
        LayerKind.RELU: nn.ReLU, LayerKind.RELU6: nn.ReLU6, LayerKind.HARDSWISH: nn.Hardswish,
        LayerKind.HARDSIGMOID: nn.Hardsigmoid, LayerKind.SILU: nn.SiLU, LayerKind.SIGMOID: nn.Sigmoid,
        LayerKind.ADD: Add, LayerKind.MUL: Mul,
    }  # fmt: skip
    if kind in simple:
        return simple[kind]()
    if kind is LayerKind.MAXPOOL:
        return nn.MaxPool2d(p.kernel, p.stride, p.padding, ceil_mode=p.ceil)
    if kind is LayerKind.AVGPOOL:
        return nn.AvgPool2d(p.kernel, p.stride, p.padding, ceil_mode=p.ceil)
    if kind is LayerKind.GLOBAL_AVGPOOL:
        return GlobalAvgPool(keepdim=layer.output_shape.rank == 4)
    if kind in (LayerKind.FLATTEN, LayerKind.RESHAPE):
        return Reshape(layer.output_shape.dims, flatten=kind is LayerKind.FLATTEN)
    if kind is LayerKind.CONCAT:
        return Concat(p.axis)
    if kind is LayerKind.SLICE:
        return Slice(p.axis, p.start, p.end)
    if kind is LayerKind.CHANNEL_SHUFFLE:
        return ChannelShuffle(p.groups)
    raise JaqcError(f"build_subnet: layer %{layer.name} of kind {kind.value} cannot be built (derive the subnet first)")


class IRModule(nn.Module):
    """A torch model computing a LayerGraph: every layer is a submodule registered at its layer name."""

    def __init__(self, graph: LayerGraph, quantizer: QuantizerConfig | None = None) -> None:
        super().__init__()
        self.ir_name = graph.name
        self.order = [(x.name, list(x.inputs), x.kind) for x in graph.topo_order()]
        self.input_names = [x.name for x in graph.inputs()]
        if len(self.input_names) != 1:
            raise JaqcError(f"build_subnet: graph {graph.name!r} has {len(self.input_names)} inputs; one is supported")
        self.output_names = [x.name for x in graph.outputs()]
        if graph.inputs():
            self.example_input_shape = graph.inputs()[0].output_shape.dims
        layers = sorted(graph.topo_order(), key=lambda x: (x.name.count("."), x.name))
        for layer in layers:
            module = layer_module(layer, quantizer)
            if module is not None:
                self._register(layer.name, module)

    def _register(self, path: str, module: nn.Module) -> None:
        parent: nn.Module = self
        *prefix, leaf = path.split(".")
        for part in prefix:
            child = parent._modules.get(part)
            if child is None:
                child = nn.Module()
                parent.add_module(part, child)
            parent = child
        existing = parent._modules.get(leaf)
        if existing is not None:  # a container created for deeper layers: keep its children
            for name, child in existing.named_children():
                module.add_module(name, child)
        parent.add_module(leaf, module)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        values = {self.input_names[0]: x}
        for name, operands, kind in self.order:
            if kind is LayerKind.INPUT:
                continue
            if kind is LayerKind.OUTPUT:
                values[name] = values[operands[0]]
                continue
            values[name] = self.get_submodule(name)(*(values[o] for o in operands))
        outs = tuple(values[n] for n in self.output_names)
        return outs[0] if len(outs) == 1 else outs


def build_subnet(graph: LayerGraph, quantizer: QuantizerConfig | None = None) -> IRModule:
    """The torch model of a plain (choice-free) LayerGraph with weights; eval mode."""
    if graph.layers_of(LayerKind.CHOICE):
        raise JaqcError("build_subnet: the graph still has choice layers; run the extract-subnet pass first")
    return IRModule(graph, quantizer).eval()
