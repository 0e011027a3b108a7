"""The supernet of JAQ: a stem, searchable blocks of candidate ops (FBNet's nine, or a user space's), a head and a
classifier.

``Supernet(config)`` builds the network of a :class:`SupernetConfig` and its search space; its forward pass samples the
architecture weights once (Gumbel-softmax in training) and mixes every block's candidates with α and
every candidate's bitwidths with β_w/β_a. In CSQ mode it refreshes the channel sets Ω from the live α and
batch-norm scales every ``csq_update_every`` training forward passes (Eq. 8).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .arch import ArchParameters, ArchSample
from .candidates import CandidateOp, ConvFactory
from .config import QuantSearchMode, SearchStep, SupernetConfig
from .csq_select import select_csq_channels
from .errors import NNStateError
from .search_conv import SPARSE_MODES, SearchConv2d
from .space import SearchSpace, check_candidates, space_candidate


class SearchBlock(nn.Module):
    """One searchable block: its candidates (an ordered ``nn.ModuleDict`` keyed by op name) mixed by α."""

    def __init__(
        self,
        index: int,
        in_channels: int,
        out_channels: int,
        stride: int,
        names: Sequence[str],
        conv: ConvFactory,
        space: SearchSpace,
    ) -> None:
        super().__init__()
        self.index = index
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.candidates = nn.ModuleDict(
            {n: space_candidate(space, n, index, in_channels, out_channels, stride, conv) for n in names}
        )

    @property
    def op_names(self) -> list[str]:
        """The candidate op names in the order of α."""
        return list(self.candidates.keys())

    def ops(self) -> list[CandidateOp]:
        """The candidate ops in the order of α."""
        return [op for op in self.candidates.values() if isinstance(op, CandidateOp)]

    def forward(self, x: Tensor, alpha: Tensor, beta_w: Tensor, beta_a: Tensor) -> Tensor:
        """``Σ_i α_i · op_i(x; β_w[i], β_a[i])`` (Eq. 5)."""
        out: Tensor | None = None
        for index, op in enumerate(self.ops()):
            term = alpha[index] * op(x, beta_w[index], beta_a[index])
            out = term if out is None else out + term
        assert out is not None
        return out

    def output_gammas(self) -> Tensor:
        """``[ops, out_channels]``: each candidate's output batch-norm scales γ (zeros for identity skip)."""
        rows = []
        for op in self.ops():
            gamma = op.output_gamma()
            rows.append(torch.zeros(self.out_channels, device=self._device()) if gamma is None else gamma.detach())
        return torch.stack(rows)

    def set_csq_channels(self, indices: Sequence[int] | Tensor) -> None:
        """Set Ω of the block input, shared by every candidate's first conv."""
        for op in self.ops():
            for conv in op.input_convs():
                conv.set_csq_channels(indices)

    def csq_channels(self) -> list[int]:
        """Ω of the block input (empty when no candidate quantizes it)."""
        for op in self.ops():
            for conv in op.input_convs():
                return [int(v) for v in conv.csq_channels.tolist()]
        return []

    def _device(self) -> torch.device:
        return next(self.parameters()).device


class Supernet(nn.Module):
    """The supernet of ``config``'s search space (:mod:`jaqc.nn.space`, FBNet by default) with architecture
    parameters and the quantization search mode of ``config``."""

    def __init__(self, config: SupernetConfig) -> None:
        super().__init__()
        self.config = config
        quant = config.quant
        self.mode: QuantSearchMode = quant.mode
        factory = ConvFactory(quant.mode, quant.weight_bits, quant.activation_bits, quant.quantizer, quant.hetero_top_k)
        if quant.mode is QuantSearchMode.FIXED:
            raise NNStateError("Supernet: FIXED is not a search mode; build a derived subnet with build_candidate")
        space = check_candidates(config)
        self.stem = space.stem()
        self.blocks = nn.ModuleList(
            SearchBlock(i, cin, cout, stride, config.candidates, factory, space)
            for i, (cin, cout, stride) in enumerate(config.block_specs())
        )
        self.head = space.head()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = space.classifier()
        self.arch = ArchParameters(
            len(self.blocks),
            len(config.candidates),
            len(quant.weight_bits),
            len(quant.activation_bits),
            config.gumbel,
        )
        self.search_step = SearchStep.WEIGHTS
        self.csq_forward_count = 0
        if self.mode is QuantSearchMode.CSQ:
            self.update_csq_channels()

    # ------------------------------------------------------------------------------------------- params
    def arch_parameters(self) -> list[nn.Parameter]:
        """α, β_w and β_a (the architecture step's parameters)."""
        return list(self.arch.parameters())

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every other parameter: conv/linear weights, batch-norm affine, learned clipping ranges."""
        arch_ids = {id(p) for p in self.arch.parameters()}
        return [p for p in self.parameters() if id(p) not in arch_ids]

    # ---------------------------------------------------------------------------------- search controls
    def set_epoch(self, epoch: int) -> float:
        """Set the Gumbel temperature for ``epoch``; returns it."""
        return self.arch.set_epoch(epoch)

    def set_step(self, step: int, steps: int) -> float:
        """Set the Gumbel temperature of the anneal schedule for step ``step`` of ``steps``; returns it."""
        return self.arch.set_step(step, steps)

    def set_search_step(self, step: SearchStep | str) -> None:
        """Mark the following forward passes as the weight step (the architecture draw is a constant) or the
        architecture step (gradients reach α and β; HETERO also quantizes differently)."""
        self.search_step = SearchStep(step)
        for module in self.modules():
            if isinstance(module, SearchConv2d):
                module.search_step = self.search_step

    # -------------------------------------------------------------------------------------------- forward
    def forward(self, x: Tensor) -> Tensor:
        """Class logits for images ``x`` ``[N, in_channels, H, W]``."""
        if self.training and self.mode is QuantSearchMode.CSQ:
            every = self.config.quant.csq_update_every
            if every > 0 and self.csq_forward_count % every == 0:
                self.update_csq_channels()
            self.csq_forward_count += 1
        sample = self.arch.sample()
        if self.search_step is SearchStep.WEIGHTS:
            sample = sample.detached()  # the weight step updates weights only: no backward through α, β
        out = self.stem(x)
        out = self.forward_blocks(out, sample)
        out = self.pool(self.head(out)).flatten(1)
        return self.classifier(out)

    def forward_blocks(self, x: Tensor, sample: ArchSample) -> Tensor:
        """The searchable blocks applied to the stem output ``x`` with architecture weights ``sample``."""
        for index, block in enumerate(self.blocks):
            x = block(x, sample.alpha[index], sample.beta_w[index], sample.beta_a[index])
        return x

    # ------------------------------------------------------------------------------------------ inspection
    def search_blocks(self) -> list[SearchBlock]:
        """The searchable blocks in order."""
        return [b for b in self.blocks if isinstance(b, SearchBlock)]

    def block(self, index: int) -> SearchBlock:
        """Searchable block ``index`` (0-based), with a clear error when out of range."""
        if not 0 <= index < len(self.blocks):
            raise NNStateError(f"block index {index} out of range 0..{len(self.blocks) - 1}")
        return self.search_blocks()[index]

    def iter_candidates(self) -> Iterator[tuple[int, str, CandidateOp]]:
        """``(block_index, op_name, op)`` for every candidate of every block."""
        for block in self.search_blocks():
            for name, op in zip(block.op_names, block.ops(), strict=True):
                yield block.index, name, op

    def input_gammas(self, block_index: int) -> tuple[Tensor, Tensor]:
        """``(alpha_probs [n], gammas [n, C])`` ranking the channels of block ``block_index``'s input (Eq. 8).

        For block 0 the previous layer is the stem (one "candidate" with probability 1).
        """
        if block_index == 0:
            norms = [m for m in self.stem.modules() if isinstance(m, nn.BatchNorm2d)]
            if not norms:
                raise NNStateError("CSQ ranks block 0's input by the stem's last batch norm; the stem has none")
            return torch.ones(1), norms[-1].weight.detach()[None]
        previous = self.block(block_index - 1)
        return self.arch.alpha_probs()[block_index - 1].detach(), previous.output_gammas()

    # --------------------------------------------------------------------------------------------- CSQ
    def update_csq_channels(self) -> None:
        """Recompute every Ω (block inputs and inside candidates) from the live α and BN scales (Eq. 8)."""
        if self.mode not in SPARSE_MODES:
            raise NNStateError(f"CSQ channels are only used in modes csq/channel0, not {self.mode.value!r}")
        if self.mode is QuantSearchMode.CHANNEL0:
            return
        k_percent = self.config.quant.csq_k_percent
        with torch.no_grad():
            for block in self.search_blocks():
                probs, gammas = self.input_gammas(block.index)
                omega = select_csq_channels(probs.cpu().double().numpy(), gammas.cpu().double().numpy(), k_percent)
                block.set_csq_channels(omega.tolist())
                for op in block.ops():
                    op.update_internal_csq(k_percent)

    def csq_state(self) -> dict[str, Any]:
        """The CSQ state that ``state_dict`` lacks: every conv's Ω and the forward counter that schedules its
        refresh. Ω is computed from α and γ *before* the last training step, so it cannot be re-derived from the
        final weights; a checkpoint carries it so that an evaluation after resuming sees the same Ω."""
        channels = {n: list(m._csq_list) for n, m in self.named_modules() if isinstance(m, SearchConv2d)}
        return {"forward_count": self.csq_forward_count, "channels": channels}

    def load_csq_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`csq_state` output."""
        convs = {n: m for n, m in self.named_modules() if isinstance(m, SearchConv2d)}
        unknown = sorted(set(state["channels"]) - set(convs))
        if unknown:
            raise NNStateError(f"CSQ state names convs this supernet lacks: {', '.join(unknown[:3])}")
        for name, indices in state["channels"].items():
            convs[name].set_csq_channels(indices)
        self.csq_forward_count = int(state["forward_count"])

    def set_csq_channels(
        self,
        block_index: int,
        indices: Sequence[int] | Tensor,
        candidate: str | None = None,
        conv: str | None = None,
    ) -> None:
        """Set Ω of block ``block_index``'s input, or of conv ``conv`` (``dw``, ``project``) in ``candidate``.

        With ``csq_update_every > 0`` the next scheduled refresh overwrites it; use 0 when Ω is set
        from outside.
        """
        block = self.block(block_index)
        if candidate is None:
            block.set_csq_channels(indices)
            return
        if candidate not in block.candidates:
            raise NNStateError(f"block {block_index} has no candidate {candidate!r}; it has {block.op_names}")
        op = block.candidates[candidate]
        assert isinstance(op, CandidateOp)
        roles = dict(op.quant_convs())
        if conv not in roles:
            raise NNStateError(f"candidate {candidate!r} has no quantized conv {conv!r}; it has {sorted(roles)}")
        roles[conv].set_csq_channels(indices)

    def csq_channels(self, block_index: int) -> list[int]:
        """Ω of block ``block_index``'s input."""
        return self.block(block_index).csq_channels()
