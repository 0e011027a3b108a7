"""HQNAS's single-path supernet: one superkernel per block, bit-sharing weights and activations, hard thresholds.

Every searchable block (``config.block_specs()``) is **one** MobileNetV2 block whose weights hold all of its
choices (Single-Path NAS, Stamoulis et al. 2019):

* the depthwise weight is a 5×5 superkernel; its inner 3×3 is the ``k=3`` choice, the outer ring is added
  when ``‖ring‖ > t_kernel``;
* the expand / depthwise / project weights are sized for expansion 6; their first ``3·C_in`` hidden channels
  are the ``e=3`` choice, the other half is added when ``‖dw[3C:]‖ > t_expand``;
* where a skip is legal (stride 1, same channels) the whole block is dropped (the identity remains) when the
  ``e=3`` group itself falls below ``t_keep``.

Bit-sharing (HQNAS): every layer keeps **one** float weight; its 2/4/8-bit versions are nested residuals
``w = Q2(w) + 1[r4 > t4]·((Q4(w) − Q2(w)) + 1[r8 > t8]·(Q8(w) − Q4(w)))``, so 8 bits are only reached through
4 bits. Activations use the same ladder with their own thresholds. ``Q`` is jaqc's quantizer
(:func:`jaqc.nn.quantizers.quantize_weight` for weights, :class:`jaqc.nn.quantizers.ActivationQuantizer` /
``jaqc::fake_quant`` for activations), so a bitwidth means what it means everywhere else in jaqc. The weight and
activation ladders are per block (shared by the block's three convs), because a derived subnet and the cost
table carry one ``(w_bits, a_bits)`` per block.

The norms ``r`` the thresholds compare against are unitless, so one sigmoid temperature fits all of them:

* kernel / expansion / keep: the RMS of the weight group (over the positions the current kernel choice uses)
  divided by the RMS of the block's depthwise superkernel at initialisation;
* weight bits: ``‖Q_b(W) − Q_b'(W)‖ / ‖Q_8(W)‖`` over the block's three (masked) weights, divided by its value
  at initialisation;
* activation bits: ``‖Q_b(a) − Q_b'(a)‖ / ‖a‖`` over the block's three quantized activations, as a running
  average (momentum 0.1, updated in training after each forward pass) divided by its first value.
  Activations change with every batch; the running average makes the decision the same in training, in eval
  and at derivation.

So every ``r`` is about 1 at the start and every threshold starts at 0: the search starts from the largest
path (k5_e6, 8/8 bits). The indicator is hard in the forward pass and its gradient is the sigmoid's,
``σ'((r − t)/τ)/τ`` (straight-through). The forward pass is exact: the selected path is computed by the same
torch calls as the plain block of a :class:`~jaqc.nn.subnet.DerivedSubnet` (split convs where a half of the
channels or the kernel ring is switched off; the switched-off parts enter as exact zeros that carry the
threshold gradients), so :func:`derived_subnet` reproduces the supernet's output bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from attrs import frozen
from torch import Tensor, nn

from jaqc.core import JaqcError
from jaqc.nn.candidates import InvertedResidual, classifier_module, head_module, stem_module
from jaqc.nn.config import SupernetConfig
from jaqc.nn.quantizers import ActivationQuantizer, quantize_weight
from jaqc.nn.subnet import DerivedSubnet

from ..jaq import DerivedArchitecture

#: The ops of HQNAS's space, in the order of the latency table (op names are FBNet candidate names).
HQNAS_OPS: tuple[str, ...] = ("k3_e3", "k3_e6", "k5_e3", "k5_e6", "skip")
#: Running-average momentum of the activation residual ratios.
ACTIVATION_MOMENTUM = 0.1
_EPS = 1e-12


@frozen(eq=False)
class Gate:
    """One thresholded indicator: ``mask`` (hard 0/1 forward, sigmoid gradient), ``soft`` (the sigmoid), ``on``."""

    mask: Tensor
    soft: Tensor
    on: bool


def gate(norm: Tensor, threshold: Tensor, temperature: float) -> Gate:
    """``1[norm > threshold]`` forward, ``σ((norm − threshold)/temperature)``'s gradient backward."""
    soft = torch.sigmoid((norm - threshold) / temperature)
    on = bool(norm.detach() > threshold.detach())
    hard = torch.ones_like(soft) if on else torch.zeros_like(soft)
    return Gate(mask=hard + (soft - soft.detach()), soft=soft, on=on)


def ladder_level(gates: Sequence[Gate]) -> int:
    """How many rungs of a nested ladder are switched on (the index of the selected candidate)."""
    level = 0
    for item in gates:
        if not item.on:
            break
        level += 1
    return level


def ladder_probabilities(gates: Sequence[Gate]) -> Tensor:
    """The relaxed probability of every rung: ``p_0 = 1 − s_1``, ``p_1 = s_1 (1 − s_2)``, ..., ``p_n = Π s``."""
    if not gates:
        return torch.ones(1)
    probs = []
    prefix = torch.ones((), dtype=gates[0].soft.dtype)
    for item in gates:
        probs.append(prefix * (1 - item.soft))
        prefix = prefix * item.soft
    probs.append(prefix)
    return torch.stack(probs)


def ladder_select(candidates: Sequence[Tensor], gates: Sequence[Gate]) -> Tensor:
    """The nested residual ``c_0 + m_1((c_1 − c_0) + m_2((c_2 − c_1) + ...))`` with exact forward values.

    The forward value is ``candidates[level]`` itself (no rounding from adding and subtracting residuals);
    each mask gets the gradient of the nested form, ``(Π_{j<k} m_j)·((c_k − c_{k−1}) + m_{k+1}(...))``.
    """
    if len(candidates) != len(gates) + 1:
        raise JaqcError(f"bit ladder: {len(candidates)} candidates need {len(candidates) - 1} gates, got {len(gates)}")
    value = candidates[ladder_level(gates)]
    if not torch.is_grad_enabled() or not any(g.mask.requires_grad for g in gates):
        return value
    coefficients: list[Tensor] = []
    suffix: Tensor | None = None
    for k in reversed(range(len(gates))):
        delta = (candidates[k + 1] - candidates[k]).detach()
        suffix = delta if suffix is None or not gates[k + 1].on else delta + suffix
        coefficients.append(suffix)
    coefficients.reverse()
    for item, coefficient in zip(gates, coefficients, strict=True):
        value = value + (item.mask - item.mask.detach()) * coefficient  # exactly zero forward
        if not item.on:
            break
    return value


@frozen(eq=False)
class BlockDecisions:
    """A block's choices for one forward pass: the gates, and the selected quantized weights."""

    kernel5: Gate
    expand6: Gate
    keep: Gate | None  # None where a skip is not legal
    weight_gates: tuple[Gate, ...]
    activation_gates: tuple[Gate, ...]
    weights: dict[str, Tensor]  # "expand", "dw", "project": selected quantized effective weights

    @property
    def op(self) -> str:
        """The FBNet name of the selected path."""
        if self.keep is not None and not self.keep.on:
            return "skip"
        return f"k{5 if self.kernel5.on else 3}_e{6 if self.expand6.on else 3}"

    @property
    def weight_level(self) -> int:
        """Index of the selected weight bitwidth."""
        return ladder_level(self.weight_gates)

    @property
    def activation_level(self) -> int:
        """Index of the selected activation bitwidth."""
        return ladder_level(self.activation_gates)

    def op_probabilities(self) -> Tensor:
        """Relaxed probabilities of :data:`HQNAS_OPS` (k3_e3, k3_e6, k5_e3, k5_e6, skip)."""
        s5, s6 = self.kernel5.soft, self.expand6.soft
        keep = self.keep.soft if self.keep is not None else torch.ones((), dtype=s5.dtype)
        return torch.stack(
            [keep * (1 - s6) * (1 - s5), keep * s6 * (1 - s5), keep * (1 - s6) * s5, keep * s6 * s5, 1 - keep]
        )


class HqnasBlock(nn.Module):
    """One searchable block as a single-path superkernel (see the module docstring)."""

    ring_mask: Tensor
    dw_rms_ref: Tensor
    weight_ref: Tensor
    act_ratio: Tensor
    act_ref: Tensor
    act_seen: Tensor

    def __init__(
        self,
        index: int,
        in_channels: int,
        out_channels: int,
        stride: int,
        config: SupernetConfig,
        temperature: float,
    ) -> None:
        super().__init__()
        self.index = index
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.half = 3 * in_channels
        self.hidden = 6 * in_channels
        self.skippable = stride == 1 and in_channels == out_channels
        self.temperature = temperature
        self.weight_bits = tuple(config.quant.weight_bits)
        self.activation_bits = tuple(config.quant.activation_bits)
        hidden = self.hidden
        # The convs only hold the weights (with nn.Conv2d's initialisation); the forward pass calls F.conv2d.
        self.expand = nn.Conv2d(in_channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.dw = nn.Conv2d(hidden, hidden, 5, stride, 2, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.project = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        quantizer = config.quant.quantizer
        self.act_in = ActivationQuantizer(self.activation_bits, quantizer)
        self.act_dw = ActivationQuantizer(self.activation_bits, quantizer)
        self.act_project = ActivationQuantizer(self.activation_bits, quantizer)
        self.t_kernel = nn.Parameter(torch.zeros(()))
        self.t_expand = nn.Parameter(torch.zeros(()))
        self.t_keep: nn.Parameter | None = nn.Parameter(torch.zeros(())) if self.skippable else None
        self.t_wbits = nn.Parameter(torch.zeros(len(self.weight_bits) - 1))
        self.t_abits = nn.Parameter(torch.zeros(len(self.activation_bits) - 1))
        ring = torch.ones(1, 1, 5, 5)
        ring[..., 1:4, 1:4] = 0
        self.register_buffer("ring_mask", ring)
        with torch.no_grad():
            self.register_buffer("dw_rms_ref", self.dw.weight.pow(2).mean().sqrt().clamp_min(_EPS))
            self.register_buffer("weight_ref", torch.ones(len(self.weight_bits) - 1))
            self.weight_ref.copy_(self._weight_ratios(self._weight_candidates(self._effective(None, None))))
        self.register_buffer("act_ratio", torch.ones(len(self.activation_bits) - 1))
        self.register_buffer("act_ref", torch.ones(len(self.activation_bits) - 1))
        self.register_buffer("act_seen", torch.zeros((), dtype=torch.bool))

    # --------------------------------------------------------------------------------------------- decisions
    def threshold_parameters(self) -> list[nn.Parameter]:
        """The block's trainable thresholds."""
        found = [self.t_kernel, self.t_expand, self.t_keep, self.t_wbits, self.t_abits]
        return [t for t in found if t is not None]

    def _relative_rms(self, weight: Tensor, positions: int) -> Tensor:
        """RMS of a depthwise weight group (``positions`` kernel taps per channel) / the superkernel's initial RMS."""
        return weight.norm() / math.sqrt(weight.shape[0] * positions) / self.dw_rms_ref

    def _effective(self, kernel5: Tensor | None, expand6: Tensor | None) -> dict[str, Tensor]:
        """The float weights with the kernel ring and the second half of the channels masked (None: kept)."""
        dw = self.dw.weight
        if kernel5 is not None:
            dw = dw * ((1 - self.ring_mask) + kernel5 * self.ring_mask)
        project = self.project.weight
        if expand6 is not None:
            kept = torch.ones(self.half, dtype=project.dtype, device=project.device)
            columns = torch.cat([kept, expand6.expand(self.hidden - self.half)])
            project = project * columns.view(1, -1, 1, 1)
        return {"expand": self.expand.weight, "dw": dw, "project": project}

    def _weight_candidates(self, weights: dict[str, Tensor]) -> dict[str, list[Tensor]]:
        return {name: [quantize_weight(w, b) for b in self.weight_bits] for name, w in weights.items()}

    def _weight_ratios(self, candidates: dict[str, list[Tensor]]) -> Tensor:
        """``‖Q_{k+1}(W) − Q_k(W)‖ / ‖Q_top(W)‖`` per rung over the block's three weights (detached)."""
        with torch.no_grad():
            rungs = len(self.weight_bits) - 1
            total = torch.stack([c[-1].pow(2).sum() for c in candidates.values()]).sum().clamp_min(_EPS)
            residuals = [
                torch.stack([(c[k + 1] - c[k]).pow(2).sum() for c in candidates.values()]).sum() for k in range(rungs)
            ]
            return (torch.stack(residuals) / total).sqrt() if residuals else torch.zeros(0)

    def decide(self) -> BlockDecisions:
        """The gates of the current weights, thresholds and activation statistics, and the selected weights."""
        tau = self.temperature
        dw = self.dw.weight
        kernel5 = gate(self._relative_rms(dw * self.ring_mask, 16), self.t_kernel, tau)
        selected, taps = (dw, 25) if kernel5.on else (dw[..., 1:4, 1:4], 9)
        expand6 = gate(self._relative_rms(selected[self.half :], taps), self.t_expand, tau)
        keep = None
        if self.t_keep is not None:
            keep = gate(self._relative_rms(selected[: self.half], taps), self.t_keep, tau)
        effective = self._effective(kernel5.mask, expand6.mask)
        candidates = self._weight_candidates(effective)
        ratios = self._weight_ratios(candidates) / self.weight_ref.clamp_min(_EPS)
        weight_gates = tuple(gate(ratios[k], self.t_wbits[k], tau) for k in range(len(ratios)))
        act = self.act_ratio / self.act_ref.clamp_min(_EPS) if bool(self.act_seen) else torch.ones_like(self.act_ratio)
        activation_gates = tuple(gate(act[k], self.t_abits[k], tau) for k in range(len(act)))
        weights = {name: ladder_select(c, weight_gates) for name, c in candidates.items()}
        return BlockDecisions(kernel5, expand6, keep, weight_gates, activation_gates, weights)

    # ----------------------------------------------------------------------------------------------- forward
    def _quantize_activation(
        self, quantizer: ActivationQuantizer, parts: Sequence[Tensor], active: int, d: BlockDecisions, stats: list
    ) -> list[Tensor]:
        """Quantize ``parts`` (channel groups of one activation) with one per-tensor range over the first
        ``active`` parts (the others are switched off and must not widen it)."""
        observed = parts[0] if active == 1 else torch.cat(list(parts[:active]), 1)
        lo, hi = quantizer.clip_ranges(observed)
        gates = d.activation_gates
        collect = self.training
        if not collect and not torch.is_grad_enabled():
            level = ladder_level(gates)
            return [quantizer.quantize(p, level, lo, hi) for p in parts]
        out = []
        for position, part in enumerate(parts):
            candidates = [quantizer.quantize(part, k, lo, hi) for k in range(len(quantizer.bits))]
            if collect and position < active:
                with torch.no_grad():
                    stats[0] += part.detach().pow(2).sum()
                    for k in range(len(candidates) - 1):
                        stats[1][k] += (candidates[k + 1] - candidates[k]).detach().pow(2).sum()
            out.append(ladder_select(candidates, gates))
        return out

    def _bn(self, bn: nn.BatchNorm2d, x: Tensor, start: int, stop: int) -> Tensor:
        """Batch norm over channels ``start:stop`` of ``bn`` (same call as the module's forward)."""
        assert bn.running_mean is not None and bn.running_var is not None and bn.momentum is not None
        if self.training and bn.num_batches_tracked is not None and start == 0:
            bn.num_batches_tracked.add_(1)
        return F.batch_norm(
            x, bn.running_mean[start:stop], bn.running_var[start:stop], bn.weight[start:stop], bn.bias[start:stop],
            self.training, bn.momentum, bn.eps,
        )  # fmt: skip

    def _depthwise(self, x: Tensor, weight: Tensor, kernel5: bool) -> Tensor:
        groups = weight.shape[0]
        if kernel5:
            return F.conv2d(x, weight, None, self.stride, 2, 1, groups)
        out = F.conv2d(x, weight[..., 1:4, 1:4].contiguous(), None, self.stride, 1, 1, groups)
        if torch.is_grad_enabled() and weight.requires_grad:
            # the ring is exactly zero here: this adds zeros, and gives the ring (and t_kernel) its gradient
            out = out + F.conv2d(x, weight * self.ring_mask, None, self.stride, 2, 1, groups)
        return out

    def forward(self, x: Tensor, d: BlockDecisions | None = None) -> Tensor:
        """The block's output on the path ``d`` selects (the current :meth:`decide` when None)."""
        d = self.decide() if d is None else d
        w_expand, w_dw, w_project = d.weights["expand"], d.weights["dw"], d.weights["project"]
        stats: list = [x.new_zeros(()), [x.new_zeros(()) for _ in d.activation_gates]]
        (xq,) = self._quantize_activation(self.act_in, [x], 1, d, stats)
        if d.expand6.on:
            h = F.relu(self.bn1(F.conv2d(xq, w_expand)))
            (hq,) = self._quantize_activation(self.act_dw, [h], 1, d, stats)
            h = F.relu(self.bn2(self._depthwise(hq, w_dw, d.kernel5.on)))
            (hq,) = self._quantize_activation(self.act_project, [h], 1, d, stats)
            out = F.conv2d(hq, w_project)
        else:
            half, hidden = self.half, self.hidden
            parts = [
                F.relu(self._bn(self.bn1, F.conv2d(xq, w_expand[:half]), 0, half)),
                F.relu(self._bn(self.bn1, F.conv2d(xq, w_expand[half:]), half, hidden)),
            ]
            parts = self._quantize_activation(self.act_dw, parts, 1, d, stats)
            parts = [
                F.relu(self._bn(self.bn2, self._depthwise(parts[0], w_dw[:half], d.kernel5.on), 0, half)),
                F.relu(self._bn(self.bn2, self._depthwise(parts[1], w_dw[half:], d.kernel5.on), half, hidden)),
            ]
            parts = self._quantize_activation(self.act_project, parts, 1, d, stats)
            out = F.conv2d(parts[0], w_project[:, :half].contiguous())
            if torch.is_grad_enabled() and w_project.requires_grad:
                # the second half's columns are exactly zero: adds zeros, carries t_expand's gradient
                out = out + F.conv2d(parts[1], w_project[:, half:].contiguous())
        out = self.bn3(out)
        if self.training:
            self._update_activation_stats(stats)
        if d.keep is None:
            return out
        return x + d.keep.mask * out

    @torch.no_grad()
    def _update_activation_stats(self, stats: list) -> None:
        if not stats[1]:
            return
        total = stats[0].clamp_min(_EPS)
        ratios = torch.stack(stats[1]).div(total).sqrt().to(self.act_ratio.dtype)
        if not bool(self.act_seen):
            self.act_ref.copy_(ratios.clamp_min(_EPS))
            self.act_ratio.copy_(ratios)
            self.act_seen.fill_(True)
        else:
            self.act_ratio.lerp_(ratios, ACTIVATION_MOMENTUM)


class HqnasSupernet(nn.Module):
    """Stem → one :class:`HqnasBlock` per searchable block → head → pool → classifier (the preset's network)."""

    def __init__(self, config: SupernetConfig, temperature: float = 0.25) -> None:
        super().__init__()
        if not temperature > 0:
            raise JaqcError(f"hqnas: the sigmoid temperature must be > 0, got {temperature!r}")
        self.config = config
        self.stem = stem_module(config)
        self.blocks = nn.ModuleList(
            HqnasBlock(i, cin, cout, stride, config, temperature)
            for i, (cin, cout, stride) in enumerate(config.block_specs())
        )
        self.head = head_module(config)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier: nn.Linear = classifier_module(config)

    def search_blocks(self) -> list[HqnasBlock]:
        """The searchable blocks in order."""
        return [b for b in self.blocks if isinstance(b, HqnasBlock)]

    def threshold_parameters(self) -> list[nn.Parameter]:
        """Every block's thresholds (the architecture and bit choices)."""
        return [t for block in self.search_blocks() for t in block.threshold_parameters()]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every other parameter: weights, batch-norm affine, learned clipping ranges."""
        ids = {id(t) for t in self.threshold_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def decide(self) -> list[BlockDecisions]:
        """The current decisions of every block."""
        return [block.decide() for block in self.search_blocks()]

    def forward_with_decisions(self, x: Tensor) -> tuple[Tensor, list[BlockDecisions]]:
        """Logits and the decisions every block took (their soft values feed the latency term)."""
        decisions = self.decide()
        out = self.stem(x)
        for block, d in zip(self.search_blocks(), decisions, strict=True):
            out = block(out, d)
        out = self.pool(self.head(out)).flatten(1)
        return self.classifier(out), decisions

    def forward(self, x: Tensor) -> Tensor:
        """Class logits of the currently selected path."""
        return self.forward_with_decisions(x)[0]

    @torch.no_grad()
    def derived(self) -> DerivedArchitecture:
        """The selected op and (w_bits, a_bits) of every block."""
        ops, bits = [], []
        for block, d in zip(self.search_blocks(), self.decide(), strict=True):
            ops.append(d.op)
            bits.append((block.weight_bits[d.weight_level], block.activation_bits[d.activation_level]))
        return DerivedArchitecture(ops=tuple(ops), bits=tuple(bits))


# --- the derived subnet ---------------------------------------------------------------------------------------


def _copy_activation(target: ActivationQuantizer | None, source: ActivationQuantizer, level: int) -> None:
    assert target is not None
    target.running_min.copy_(source.running_min)
    target.running_max.copy_(source.running_max)
    target.set_initialized(source.initialized)
    if target.clip_lo is not None and source.clip_lo is not None and target.clip_hi is not None:
        assert source.clip_hi is not None
        target.clip_lo.copy_(source.clip_lo[level : level + 1])
        target.clip_hi.copy_(source.clip_hi[level : level + 1])
    if target.mse and source.mse:  # MSE clipping: the chosen width's running factor
        target.clip_factor.copy_(source.clip_factor[level : level + 1])


def _copy_bn(target: nn.BatchNorm2d, source: nn.BatchNorm2d, channels: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(target, name).copy_(getattr(source, name)[:channels])
    if target.num_batches_tracked is not None and source.num_batches_tracked is not None:
        target.num_batches_tracked.copy_(source.num_batches_tracked)


@torch.no_grad()
def copy_block(target: nn.Module, block: HqnasBlock, op: str, activation_level: int) -> None:
    """Copy the superkernel's weights of path ``op`` into a plain FBNet block (k3 = the 5×5's centre, e3 = the
    first ``3·C_in`` hidden channels)."""
    if op == "skip":
        return
    if not isinstance(target, InvertedResidual):
        raise JaqcError(f"block {block.index}: op {op} needs an inverted residual, got {type(target).__name__}")
    hidden = block.in_channels * target.expansion
    target.expand.weight.copy_(block.expand.weight[:hidden])
    _copy_bn(target.bn1, block.bn1, hidden)
    dw = block.dw.weight[:hidden]
    target.dw.weight.copy_(dw if target.kernel == 5 else dw[..., 1:4, 1:4])
    _copy_bn(target.bn2, block.bn2, hidden)
    target.project.weight.copy_(block.project.weight[:, :hidden])
    _copy_bn(target.bn3, block.bn3, block.out_channels)
    _copy_activation(target.expand.act_quant, block.act_in, activation_level)
    _copy_activation(target.dw.act_quant, block.act_dw, activation_level)
    _copy_activation(target.project.act_quant, block.act_project, activation_level)


@torch.no_grad()
def derived_subnet(net: HqnasSupernet) -> tuple[DerivedSubnet, DerivedArchitecture]:
    """The selected path as a :class:`DerivedSubnet` holding the supernet's trained weights."""
    arch = net.derived()
    subnet = DerivedSubnet(net.config, arch.ops, arch.bits)
    source = net.state_dict()
    own = subnet.state_dict()
    fixed = {
        k: source[k] for k in own if not k.startswith("blocks.") and k in source and source[k].shape == own[k].shape
    }
    subnet.load_state_dict({**own, **fixed})
    for target, block, d in zip(subnet.blocks, net.search_blocks(), net.decide(), strict=True):
        copy_block(target, block, d.op, d.activation_level)
    return subnet, arch
