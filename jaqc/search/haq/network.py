"""HAQ's environment over a real network: quantize to an episode's bits, fine-tune briefly, validate; the cost of
a configuration from per-layer figures of the cost model at BatchTile mappings on a fixed accelerator.

- :class:`LayerCostTable`: every quantizable layer (conv2d and linear, in the order of
  :func:`~jaqc.search.haq.layers.layer_infos_from_graph`) at each of the nine ``(w_bits, a_bits)`` pairs, mapped
  by **one** batched BatchTile call (``jaq`` space, latency objective, as ``jaqc map`` and the JAQ runner's
  schedule). A configuration's latency and energy are sums of the cached per-layer figures, computed exactly as
  the schedule computes its totals (``docs/schedule.md``), so they equal the ``batchtile`` pass + schedule of the
  whole network at those bits; EDAP is total energy × total latency × area.
- :class:`HaqNetworkEnv`: a :class:`~jaqc.search.haq.environment.HaqEnvironment`. ``evaluate(bits)`` builds the
  network from its IR with every quantizable layer at its episode bits (:func:`jaqc.nn.subnet.build_subnet`:
  fixed-bit fake quantization, straight-through gradients), fine-tunes it with SGD for a few batches of the
  fine-tune split (the same batches in every episode), and returns its top-1 accuracy in percent on the reward
  split, a held-out part of the training data (never the test split). Accuracies are memoised per
  configuration (the fine-tune is deterministic). The reference accuracy is the all-w8a8 network's after the
  same fine-tune.
- :func:`default_network`, :func:`pretrain`, :func:`load_network`: the network HAQ searches, either the preset's
  FBNet network with one op in every block, trained in floating point for a few epochs, or the subnet of a
  finished run or any IR file with weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from attrs import field, frozen
from torch import nn

from jaqc.core import JaqcError
from jaqc.data import make_loader
from jaqc.hw.model.totals import NetworkTotals
from jaqc.ir import AcceleratorConfig, LayerGraph, LayerKind, QuantSpec, load_graph
from jaqc.search.retrain import GRAD_CLIP_NORM

from .actions import ACTION_BITS
from .environment import BitConfig, ResourceKind
from .errors import HaqError
from .layers import LayerInfo, layer_infos_from_graph

#: The nine (w_bits, a_bits) pairs of a layer, in the order of the cost table's rows.
BIT_PAIRS: tuple[tuple[int, int], ...] = tuple((w, a) for w in ACTION_BITS for a in ACTION_BITS)

#: Share of the training split held out to measure the reward (stratified; the rest is fine-tuned on).
REWARD_FRACTION: float = 0.2

#: Called with one dict per pretraining epoch (``epoch``, ``w_loss``, ``w_acc``).
EpochCallback = Callable[[dict[str, float]], None]


def quantizable_layers(graph: LayerGraph) -> list[Any]:
    """The conv2d and linear layers of ``graph`` in topological order (the order of HAQ's layers and bits)."""
    return graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)


def check_network(graph: LayerGraph) -> None:
    """Raise a :class:`HaqError` unless every conv2d / linear layer of ``graph`` can be built quantized.

    :func:`jaqc.nn.subnet.build_subnet` quantizes a conv only when its kernel, stride and padding are square (a
    bias stays in floating point); every layer needs its weights.
    """
    layer_infos_from_graph(graph)  # rejects supernets and graphs without conv/linear
    for layer in quantizable_layers(graph):
        if "weight" not in layer.weights:
            raise HaqError(f"HAQ network {graph.name!r}: layer %{layer.name} has no weights; give an IR with weights")
        if layer.kind is LayerKind.CONV2D:
            p = layer.params
            if p.kernel[0] != p.kernel[1] or p.stride[0] != p.stride[1] or p.padding[0] != p.padding[1]:
                raise HaqError(
                    f"HAQ network {graph.name!r}: conv %{layer.name} (kernel {p.kernel}, stride {p.stride}, padding "
                    f"{p.padding}) cannot be quantized: a quantized conv needs a square kernel, stride and padding"
                )
    if len(graph.inputs()) != 1:
        raise HaqError(f"HAQ network {graph.name!r}: one input is supported, got {len(graph.inputs())}")


def _check_bits(bits: BitConfig, count: int) -> BitConfig:
    config = tuple((int(w), int(a)) for w, a in bits)
    if len(config) != count or any(w not in ACTION_BITS or a not in ACTION_BITS for w, a in config):
        raise HaqError(f"expected {count} (w, a) pairs of 2, 4 or 8 bits, got {bits!r}")
    return config


def resource(totals: NetworkTotals, kind: ResourceKind | str) -> float:
    """The resource of ``kind`` HAQ budgets, in the schedule's units: latency (ms), energy (mJ) or EDAP
    (mJ·ms·mm²)."""
    kind = ResourceKind(kind)
    if kind is ResourceKind.LATENCY:
        return totals.latency_ms
    return totals.energy_mJ if kind is ResourceKind.ENERGY else totals.edap_mJ_ms_mm2


class LayerCostTable:
    """Cycles and energy of every quantizable layer at every ``(w, a)`` pair and width its outputs are written
    at (its consumers' activation bits, a function of the configuration), each at its BatchTile mapping on
    ``accelerator``; filled by one batched BatchTile call (``len(layers) × 9 × 3`` problems)."""

    def __init__(
        self,
        graph: LayerGraph,
        accelerator: AcceleratorConfig,
        space: str = "jaq",
        objective: str = "latency",
        hw_model: str = "deployment",
    ) -> None:
        from jaqc.hw.mapping.candidate_table import candidate_cost_table
        from jaqc.hw.model.lowering import layer_problem
        from jaqc.hw.model.unit_costs import area_for
        from jaqc.ir.metrics import FLOAT_AS_BITS, weighted_consumers

        layers = quantizable_layers(graph)
        if not layers:
            raise HaqError(f"graph {graph.name!r} has no conv2d or linear layer to quantize")
        self.accelerator = accelerator
        self.layer_names: tuple[str, ...] = tuple(layer.name for layer in layers)
        index = {name: i for i, name in enumerate(self.layer_names)}
        #: Per layer: the indices of the quantizable layers reading its output, and whether it reaches a graph
        #: output (written at 8 bits); a configuration's consumer bits follow from these.
        self.consumers: tuple[tuple[tuple[int, ...], bool], ...] = tuple(
            (tuple(index[c.name] for c in found if c.name in index), out or any(c.name not in index for c in found))
            for found, out in (weighted_consumers(graph, layer) for layer in layers)
        )
        self.output_bits = FLOAT_AS_BITS
        widths = sorted({a for _, a in BIT_PAIRS} | {self.output_bits})
        # the cost table JAQ, Auto-NBA and HQNAS price their candidates with: every layer one "block" of one op
        table = candidate_cost_table(
            [[[layer_problem(graph, layer)]] for layer in layers], accelerator, BIT_PAIRS, space, objective,
            hw_model=hw_model, out_bits=widths, writers=[[[True]]] * len(layers),
        )  # fmt: skip
        infeasible = (~table.feasible).nonzero()
        if len(infeasible):
            _, layer, _, pair = (int(v) for v in infeasible[0])
            raise HaqError(
                f"HAQ network {graph.name!r}: layer %{self.layer_names[layer]} at w{BIT_PAIRS[pair][0]}a"
                f"{BIT_PAIRS[pair][1]} has no mapping that fits accelerator {accelerator.name or ''!s}"
            )
        keys = [(w, a, c) for w, a in BIT_PAIRS for c in widths]
        slot = {(w, a, c): (widths.index(c), BIT_PAIRS.index((w, a))) for w, a, c in keys}
        self.cycles: tuple[dict[tuple[int, int, int], int], ...] = tuple(
            {key: int(table.total_cycles[slot[key][0], i, 0, slot[key][1]]) for key in keys} for i in range(len(layers))
        )
        self.energy_nJ: tuple[dict[tuple[int, int, int], float], ...] = tuple(
            {key: float(table.energy_nj[slot[key][0], i, 0, slot[key][1]]) for key in keys} for i in range(len(layers))
        )
        self.area_mm2: float = area_for(accelerator).total

    def out_bits(self, config: Sequence[tuple[int, int]]) -> list[int]:
        """The width each layer's outputs are written at under ``config``: its consumers' largest ``a_bits``
        (8 where it reaches a graph output or a layer outside the table)."""
        return [
            max([*(config[c][1] for c in consumers), *([self.output_bits] if output else [])])
            for consumers, output in self.consumers
        ]

    def __len__(self) -> int:
        return len(self.layer_names)

    def totals(self, bits: BitConfig) -> NetworkTotals:
        """The network's totals at ``bits``, summed as the schedule sums them (one type: the schedule's)."""
        config = _check_bits(bits, len(self))
        keys = [(*pair, out) for pair, out in zip(config, self.out_bits(config), strict=True)]
        return NetworkTotals.of_layers(
            [self.cycles[i][key] for i, key in enumerate(keys)], [self.energy_nJ[i][key] for i, key in enumerate(keys)],
            self.accelerator, self.area_mm2,
        )  # fmt: skip

    def cost(self, bits: BitConfig, kind: ResourceKind | str) -> float:
        """Latency (ms), energy (mJ) or EDAP (mJ·ms·mm²) of the network at ``bits``."""
        return resource(self.totals(bits), kind)


def _positive(_inst: object, attribute: Any, value: float) -> None:
    if not value > 0:
        raise HaqError(f"FinetuneSettings.{attribute.name} must be > 0, got {value!r}")


def _non_negative(_inst: object, attribute: Any, value: float) -> None:
    if not value >= 0:
        raise HaqError(f"FinetuneSettings.{attribute.name} must be >= 0, got {value!r}")


@frozen(kw_only=True)
class FinetuneSettings:
    """The short fine-tune of every episode: SGD (momentum, weight decay, constant learning rate) for ``steps``
    batches of ``batch_size`` from the fine-tune split, in the order ``seed`` fixes (the same in every episode)."""

    steps: int = field(converter=int, validator=_non_negative)
    lr: float = field(converter=float, validator=_positive)
    batch_size: int = field(converter=int, validator=_positive)
    seed: int = field(default=0, converter=int, validator=_non_negative)
    momentum: float = field(default=0.9, converter=float, validator=_non_negative)
    weight_decay: float = field(default=5e-4, converter=float, validator=_non_negative)


def _batches(dataset: Any, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of ``dataset`` epoch after epoch (epoch ``e`` in the order fixed by ``(seed, e)``), full ones only."""
    if len(dataset) < batch_size:
        raise HaqError(f"the fine-tune split has {len(dataset)} samples, fewer than a batch of {batch_size}")
    epoch = 0
    while True:
        yield from make_loader(dataset, batch_size=batch_size, shuffle=True, seed=seed, epoch=epoch, drop_last=True)
        epoch += 1


def finetune(model: nn.Module, dataset: Any, settings: FinetuneSettings, steps: int | None = None) -> list[float]:
    """Train ``model`` for ``steps`` (default ``settings.steps``) SGD steps; the losses. Leaves it in eval mode."""
    count = settings.steps if steps is None else steps
    losses: list[float] = []
    if count > 0:
        model.train()
        optimizer = torch.optim.SGD(
            model.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
        )
        batches = _batches(dataset, settings.batch_size, settings.seed)
        for _, (images, labels) in zip(range(count), batches, strict=False):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
            optimizer.step()
            losses.append(float(loss.detach()))
    model.eval()
    return losses


def accuracy_percent(model: nn.Module, dataset: Any, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on ``dataset`` in percent (eval mode)."""
    from jaqc.search.outputs import accuracy

    return 100.0 * accuracy(model, dataset, batch_size)


class HaqNetworkEnv:
    """HAQ's environment over the network ``graph`` (an IR with weights) on ``accelerator`` (see the module
    docstring). ``reference_accuracy`` is computed on first use unless given (e.g. from a checkpoint)."""

    def __init__(
        self,
        graph: LayerGraph,
        finetune_set: Any,
        reward_set: Any,
        accelerator: AcceleratorConfig,
        settings: FinetuneSettings,
        *,
        quantizer: Any = None,
        cost_table: LayerCostTable | None = None,
        reference_accuracy: float | None = None,
    ) -> None:
        check_network(graph)
        if len(reward_set) == 0:
            raise HaqError("the reward split is empty: the training split is too small")
        self.graph = graph
        self.finetune_set = finetune_set
        self.reward_set = reward_set
        self.settings = settings
        self.quantizer = quantizer
        self.layer_names: tuple[str, ...] = tuple(layer.name for layer in quantizable_layers(graph))
        self._layers: tuple[LayerInfo, ...] = tuple(layer_infos_from_graph(graph))
        self.cost_table = cost_table if cost_table is not None else LayerCostTable(graph, accelerator)
        if self.cost_table.layer_names != self.layer_names:
            raise HaqError("the cost table was built for other layers than the network's")
        self._accuracy: dict[BitConfig, float] = {}
        self._reference = None if reference_accuracy is None else float(reference_accuracy)
        self.evaluations = 0  # fine-tunes actually run (memoised configurations are not counted)

    @property
    def layers(self) -> tuple[LayerInfo, ...]:
        """The quantizable layers in network order (indices 0..n-1)."""
        return self._layers

    @property
    def reference_bits(self) -> BitConfig:
        """Every layer at w8a8."""
        return tuple((8, 8) for _ in self._layers)

    @property
    def reference_accuracy(self) -> float:
        """The all-w8a8 network's accuracy (percent) on the reward split after the episode fine-tune."""
        if self._reference is None:
            self._reference = self.evaluate(self.reference_bits)
        return self._reference

    def quantized_graph(self, bits: BitConfig) -> LayerGraph:
        """A copy of the network's IR with each quantizable layer's ``quant`` set to its ``(w, a)``."""
        config = _check_bits(bits, len(self._layers))
        graph = self.graph.clone()
        for name, (w, a) in zip(self.layer_names, config, strict=True):
            graph[name].quant = QuantSpec(w, a)
        return graph

    def build(self, bits: BitConfig) -> nn.Module:
        """The torch model of the network quantized to ``bits``, with the network's weights (eval mode)."""
        from jaqc.nn.subnet import build_subnet

        return build_subnet(self.quantized_graph(bits), self.quantizer)

    def trained_model(self, bits: BitConfig, steps: int | None = None) -> tuple[nn.Module, list[float]]:
        """The network quantized to ``bits`` after ``steps`` fine-tune steps (default: the episode's), its losses."""
        model = self.build(bits)
        losses = finetune(model, self.finetune_set, self.settings, steps)
        return model, losses

    def evaluate(self, bits: BitConfig) -> float:
        """Accuracy (percent) on the reward split after the short fine-tune at ``bits`` (memoised)."""
        config = _check_bits(bits, len(self._layers))
        if config not in self._accuracy:
            model, _ = self.trained_model(config)
            self._accuracy[config] = accuracy_percent(model, self.reward_set)
            self.evaluations += 1
        return self._accuracy[config]

    def cost(self, bits: BitConfig, kind: ResourceKind) -> float:
        """The network's latency (ms), energy (mJ) or EDAP at ``bits`` from the cached per-layer figures."""
        return self.cost_table.cost(bits, kind)

    def accuracy_cache(self) -> list[list[Any]]:
        """The memoised accuracies as ``[[[w, a], ...], accuracy]`` rows (for a checkpoint)."""
        return [[[list(pair) for pair in bits], acc] for bits, acc in self._accuracy.items()]

    def load_accuracy_cache(self, rows: Sequence[Sequence[Any]]) -> None:
        """Restore :meth:`accuracy_cache` output."""
        for bits, acc in rows:
            self._accuracy[_check_bits(tuple(tuple(pair) for pair in bits), len(self._layers))] = float(acc)


# --- the network HAQ searches ------------------------------------------------------------------------------------


def default_network(config: Any, base_op: str) -> nn.Module:
    """The preset's FBNet network with ``base_op`` in every block, all in floating point (stem, head and
    classifier as ``config`` says)."""
    from jaqc.nn.config import FBNET_CANDIDATES
    from jaqc.nn.subnet import DerivedSubnet

    if base_op not in FBNET_CANDIDATES:
        raise JaqcError(f"haq option 'base_op': {base_op!r} is not one of {', '.join(FBNET_CANDIDATES)}")
    return DerivedSubnet(config, [base_op] * config.num_blocks, [None] * config.num_blocks)


def pretrain(
    model: nn.Module,
    dataset: Any,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    *,
    on_epoch: EpochCallback | None = None,
    on_step: Callable[[float], None] | None = None,
) -> None:
    """Train ``model`` for ``epochs`` epochs (SGD, momentum 0.9, weight decay 5e-4, Nesterov, cosine learning
    rate from ``lr``) on ``dataset``; ``on_epoch`` gets each epoch's mean loss and accuracy."""
    steps_per_epoch = len(dataset) // batch_size
    if epochs > 0 and steps_per_epoch < 1:
        raise HaqError(f"the pretraining split has {len(dataset)} samples, fewer than a batch of {batch_size}")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs * steps_per_epoch))
    for epoch in range(epochs):
        model.train()
        losses, hits, seen = [], 0, 0
        for images, labels in make_loader(
            dataset, batch_size=batch_size, shuffle=True, seed=seed, epoch=epoch, drop_last=True
        ):
            optimizer.zero_grad(set_to_none=True)
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            hits += int((logits.detach().argmax(-1) == labels).sum())
            seen += len(labels)
            if on_step is not None:
                on_step(losses[-1])
        if on_epoch is not None:
            on_epoch({"epoch": epoch, "w_loss": math.fsum(losses) / len(losses), "w_acc": hits / seen})
    model.eval()


@frozen(kw_only=True)
class NetworkSource:
    """Where the searched network came from: the IR file, and the block ops when it is a derived subnet."""

    path: Path
    ops: tuple[str, ...] | None


def resolve_network(spec: str | Path) -> NetworkSource:
    """The IR file of option ``network``: a run directory's ``retrain/subnet.json`` if present, else its
    ``subnet.json``; or an IR ``.json`` file itself. The run's ``architecture.json`` ops are kept if present."""
    from jaqc.search.rundir import RunDir, RunDirError

    path = Path(spec)
    if path.is_dir():
        run = RunDir(path)
        try:
            subnet = run.deployed_subnet()
        except RunDirError:
            raise JaqcError(
                f"haq option 'network': run directory {path} has no subnet.json (nor retrain/subnet.json); "
                "has its search finished?"
            ) from None
        try:
            ops: tuple[str, ...] | None = tuple(str(op) for op in run.read_architecture()["ops"])
        except RunDirError:
            ops = None
        return NetworkSource(path=subnet, ops=ops)
    if path.suffix != ".json":
        raise JaqcError(f"haq option 'network': {spec!r} is neither a run directory nor an IR .json file")
    if not path.is_file():
        raise JaqcError(f"haq option 'network': no such file {spec!r}")
    return NetworkSource(path=path, ops=None)


def load_network(source: NetworkSource) -> LayerGraph:
    """The IR of ``source`` with its weights, checked to be quantizable by HAQ."""
    graph = load_graph(source.path)
    if any(not layer.weights for layer in quantizable_layers(graph)):
        raise JaqcError(f"haq option 'network': {source.path} has no weights; save the IR with weights")
    try:
        check_network(graph)
    except HaqError as exc:
        raise JaqcError(f"haq option 'network': {source.path}: {exc}") from None
    return graph


def clear_annotations(graph: LayerGraph) -> LayerGraph:
    """A copy of ``graph`` without accelerator, mappings, costs (HAQ maps on its own accelerator)."""
    out = graph.clone()
    out.accelerator = None
    for layer in quantizable_layers(out):
        layer.mapping = None
        layer.cost = None
    return out


def input_shape(graph: LayerGraph) -> tuple[int, ...]:
    """The shape of the network's single input."""
    return tuple(graph.inputs()[0].output_shape.dims)


def check_fits_data(graph: LayerGraph, sample_shape: Sequence[int], num_classes: int, where: str) -> None:
    """The network takes images of ``sample_shape`` (C, H, W) and has ``num_classes`` outputs."""
    shape = input_shape(graph)
    if tuple(shape[1:]) != tuple(sample_shape):
        raise JaqcError(
            f"{where}: the network's input {list(shape)} does not fit the preset's images {list(sample_shape)}"
        )
    outputs = graph.outputs()
    if len(outputs) != 1 or outputs[0].output_shape.dims[-1] != num_classes:
        dims = [list(o.output_shape.dims) for o in outputs]
        raise JaqcError(f"{where}: the network's output {dims} does not give the preset's {num_classes} classes")
