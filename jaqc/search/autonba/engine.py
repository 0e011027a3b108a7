"""The Auto-NBA search engine: the supernet in HETERO mode, the weight and architecture steps, the hardware
refresh."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from attrs import frozen
from torch import Tensor

from jaqc.core import JaqcError
from jaqc.device import autocast, to_device
from jaqc.hw.generator.network import HardwareGenerator
from jaqc.hw.generator.training import GeneratedDesign
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.nn.config import QuantSearchMode, SearchStep, SupernetConfig
from jaqc.nn.supernet import Supernet

from ..distributed import average_gradients
from ..hw_binding import ExpectedHardwareCost
from ..jaq import (
    DerivedArchitecture,
    JaqSearchSettings,
    batch_accuracy,
    derive_architecture,
    gradients_only_for,
    load_training_state,
    move_engine,
    refresh_with_generator,
    training_state,
    weight_step,
)
from ..space_costs import SpaceCosts
from .accelerator import GeneratorSearchResult, HardwareSearchResult, best_of_n
from .options import HW_SEED_OFFSET, TOP_K, AutoNbaOptions
from .sampling import conv_bit_probs, gumbel_top_k, keep_pair_mass, pair_gates


def hetero_config(config: SupernetConfig) -> SupernetConfig:
    """``config`` with its searchable layers in HETERO mode, top-2 in the architecture step."""
    quant = attrs.evolve(config.quant, mode=QuantSearchMode.HETERO, hetero_top_k=TOP_K)
    return attrs.evolve(config, quant=quant)


@frozen(eq=False)
class SampledPath:
    """One architecture-step draw: the sampled op pair per block and bit pair per (block, op), with gates."""

    op_order: Tensor  # [blocks, k] op indices, the active first
    w_order: Tensor  # [blocks, ops, k]
    a_order: Tensor  # [blocks, ops, k]
    op_gates: Tensor  # [blocks, ops]
    w_gates: Tensor  # [blocks, ops, weight bits]
    a_gates: Tensor  # [blocks, ops, activation bits]

    def active(self) -> tuple[list[int], list[tuple[int, int]]]:
        """The active op of every block and its active (weight, activation) bit indices."""
        ops = self.op_order[:, 0].tolist()
        bits = [(int(self.w_order[b, o, 0]), int(self.a_order[b, o, 0])) for b, o in enumerate(ops)]
        return ops, bits


class AutoNbaSearch:
    """The Auto-NBA search state: supernet, optimisers, cost table, accelerator; no data, no files."""

    def __init__(
        self, config: SupernetConfig, settings: JaqSearchSettings, options: AutoNbaOptions, steps_per_epoch: int
    ) -> None:
        if steps_per_epoch < 1:
            raise JaqcError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        if settings.passes:
            raise JaqcError("search passes apply to JAQ; Auto-NBA samples its paths from the raw α and β")
        torch.manual_seed(settings.seed)
        self.config = hetero_config(config)
        self.settings = settings
        self.options = options
        self.supernet = Supernet(self.config)
        self.device = torch.device("cpu")  # see to()
        self.weight_opt = torch.optim.SGD(
            self.supernet.weight_parameters(), lr=settings.lr, momentum=settings.momentum,
            weight_decay=settings.weight_decay,
        )  # fmt: skip
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.weight_opt, T_max=settings.epochs * steps_per_epoch
        )
        self.arch_opt = torch.optim.Adam(self.supernet.arch_parameters(), lr=settings.arch_lr, betas=(0.5, 0.999))
        self.space = SpaceCosts.from_supernet(self.supernet)
        self.hw_cost = ExpectedHardwareCost.for_supernet(
            self.supernet, settings.hw, hw_model=settings.hw_model, space=self.space
        )
        self.hw_generator = torch.Generator().manual_seed(settings.seed + HW_SEED_OFFSET)
        # with options.hardware == "generator": JAQ's hardware generation network, trained as JAQ's engine does
        self.generator = HardwareGenerator()
        self.design: GeneratedDesign | None = None
        self.refreshes = 0
        self.arch_steps = 0
        self.hw_searches = 0
        self.last_search: HardwareSearchResult | GeneratorSearchResult | None = None

    def to(self, device: torch.device | str) -> AutoNbaSearch:
        """Run the search on ``device`` (:func:`jaqc.search.jaq.move_engine`)."""
        move_engine(self, device)
        return self

    @property
    def hw_every(self) -> int:
        """Architecture steps between accelerator searches: JAQ's ``hw_refresh_every`` with JAQ's generator,
        the option ``hw_every`` with the random search."""
        return self.settings.hw_refresh_every if self.options.hardware == "generator" else self.options.hw_every

    @property
    def hardware_aware(self) -> bool:
        """Whether the architecture step sees the hardware (λ > 0); λ = 0 also skips the accelerator re-search."""
        return self.settings.lam > 0

    @property
    def accelerator(self) -> AcceleratorConfig:
        """The accelerator E_HW is measured on (JAQ's Table 2 design until the first search)."""
        assert self.hw_cost.accelerator is not None
        return self.hw_cost.accelerator

    # --- forward --------------------------------------------------------------------------------------------------
    def forward_path(
        self, images: Tensor, ops: Sequence[Sequence[int]], w_probs: Tensor, a_probs: Tensor, gates: Tensor | None
    ) -> Tensor:
        """Logits of the supernet running only ``ops[b]`` in block ``b`` (each scaled by ``gates[b, op]`` when
        given) with bit probabilities ``w_probs[b, op]``, ``a_probs[b, op]``."""
        net = self.supernet
        out = net.stem(images)
        for index, block in enumerate(net.search_blocks()):
            candidates = block.ops()
            total: Tensor | None = None
            for op in ops[index]:
                term = candidates[op](out, w_probs[index, op], a_probs[index, op])
                if gates is not None:
                    term = gates[index, op] * term
                total = term if total is None else total + term
            assert total is not None
            out = total
        return net.classifier(net.pool(net.head(out)).flatten(1))

    def sample_single_path(self) -> tuple[list[list[int]], Tensor, Tensor]:
        """The weight step's single path: one op per block and one (weight, activation) bitwidth per op, each a
        Gumbel-max draw from the softmax of its logits; the bits as one-hot probabilities ``[blocks, ops, bits]``."""
        arch = self.supernet.arch
        generator = arch.generator
        ops = gumbel_top_k(arch.alpha, 1, generator)
        w_probs = torch.zeros_like(arch.beta_w.detach()).scatter(-1, gumbel_top_k(arch.beta_w, 1, generator), 1.0)
        a_probs = torch.zeros_like(arch.beta_a.detach()).scatter(-1, gumbel_top_k(arch.beta_a, 1, generator), 1.0)
        return ops.tolist(), w_probs, a_probs

    def sample_path(self) -> SampledPath:
        """Draw the architecture step's hard top-2 ops and bits (Gumbel noise from the supernet's generator)."""
        arch = self.supernet.arch
        generator = arch.generator
        op_order = gumbel_top_k(arch.alpha, TOP_K, generator)
        w_order = gumbel_top_k(arch.beta_w, TOP_K, generator)
        a_order = gumbel_top_k(arch.beta_a, TOP_K, generator)
        return SampledPath(
            op_order=op_order,
            w_order=w_order,
            a_order=a_order,
            op_gates=pair_gates(arch.alpha, op_order),
            w_gates=pair_gates(arch.beta_w, w_order),
            a_gates=pair_gates(arch.beta_a, a_order),
        )

    # --- the two steps --------------------------------------------------------------------------------------------
    def weight_step(self, images: Tensor, labels: Tensor) -> dict[str, float]:
        """One SGD step of the supernet's weights on CE. ``weight_path="single"`` (Auto-NBA's code): only the
        sampled single path runs and trains (:meth:`sample_single_path`; each conv quantizes at its sampled bits
        with identity backward). ``"mixture"``: ops mixed by Gumbel-softmax α, bits β-blended with identity
        backward (HETERO + WEIGHTS, jaqc.nn.mixing.hetero_blend)."""
        if self.options.weight_path == "mixture":
            return weight_step(self, images, labels)
        net = self.supernet
        net.train()
        net.set_search_step(SearchStep.WEIGHTS)
        self.weight_opt.zero_grad(set_to_none=True)
        ops, w_probs, a_probs = self.sample_single_path()
        images, labels = to_device((images, labels), self.device)
        with autocast(self.device, self.settings.amp):
            logits = self.forward_path(images, ops, w_probs.to(self.device), a_probs.to(self.device), None)
            loss = F.cross_entropy(logits, labels)
        loss.backward()
        average_gradients(net.weight_parameters())
        self.weight_opt.step()
        self.schedule.step()
        return {"w_loss": float(loss.detach()), "w_acc": batch_accuracy(logits, labels),
                "lr": self.schedule.get_last_lr()[0]}  # fmt: skip

    def arch_step(self, images: Tensor, labels: Tensor) -> dict[str, Any]:
        """One Adam step of α, β on CE + λ·E_HW over the sampled top-2 path; re-searches the accelerator first
        every ``hw_every`` steps."""
        record: dict[str, Any] = {}
        if self.hardware_aware and self.arch_steps % self.hw_every == 0:
            record["hw_search"] = self.search_hardware().to_json()
        net = self.supernet
        net.train()
        net.set_search_step(SearchStep.ARCH)
        arch = net.arch
        self.arch_opt.zero_grad(set_to_none=True)
        buffers = list(net.buffers())  # BN running statistics, activation ranges
        saved = [buffer.detach().clone() for buffer in buffers]
        path = self.sample_path()
        images, labels = to_device((images, labels), self.device)
        with gradients_only_for(net, net.arch_parameters()):
            with autocast(self.device, self.settings.amp):
                logits = self.forward_path(
                    images,
                    path.op_order.tolist(),
                    conv_bit_probs(path.w_gates, path.w_order),
                    conv_bit_probs(path.a_gates, path.a_order),
                    path.op_gates,
                )
                ce = F.cross_entropy(logits, labels)
            if self.hardware_aware:
                e_hw, parts = self.hw_cost(path.op_gates, path.w_gates, path.a_gates)
                loss = ce + self.settings.lam * e_hw.to(ce.dtype)
            else:
                with torch.no_grad():
                    e_hw, parts = self.hw_cost(path.op_gates, path.w_gates, path.a_gates)
                loss = ce
            before = [p.detach().clone() for p in (arch.alpha, arch.beta_w, arch.beta_a)]
            loss.backward()
        with torch.no_grad():  # the single sampled path must not move the mixture's running statistics
            for buffer, value in zip(buffers, saved, strict=True):
                buffer.copy_(value)
        average_gradients(net.arch_parameters())
        self.arch_opt.step()
        ran = torch.zeros(arch.alpha.shape, dtype=torch.bool, device=arch.alpha.device).scatter(-1, path.op_order, True)
        keep_pair_mass(arch.alpha.data, before[0], path.op_order)
        keep_pair_mass(arch.beta_w.data, before[1], path.w_order, ran)
        keep_pair_mass(arch.beta_a.data, before[2], path.a_order, ran)
        self.arch_steps += 1
        record.update(
            {
                "a_loss": float(loss.detach()),
                "a_ce": float(ce.detach()),
                "a_acc": batch_accuracy(logits, labels),
                "e_hw": float(e_hw.detach()),
                **{f"path_{k}": v for k, v in parts.items()},
            }
        )
        return record

    # --- hardware -------------------------------------------------------------------------------------------------
    def derived(self) -> DerivedArchitecture:
        """argmax α per block; argmax β_w, β_a of the chosen op (ties: the first), as JAQ derives it."""
        return derive_architecture(self.space, self.supernet)

    def search_hardware(self, generator_steps: int | None = None) -> HardwareSearchResult | GeneratorSearchResult:
        """The accelerator for the current subnet; the cost table follows it. With JAQ's generator: trained
        ``generator_steps`` steps (default JAQ's ``generator_steps``) on the derived subnet, its state carried from
        search to search (:func:`jaqc.search.jaq.refresh_with_generator`); with the random search: best-of-N."""
        if self.options.hardware == "generator":
            design = refresh_with_generator(self, generator_steps or self.settings.generator_steps)
            self.hw_searches += 1
            self.last_search = GeneratorSearchResult(accelerator=design.accelerator, totals=design.totals,
                                                     e_hw=design.e_hw, steps=len(design.history))  # fmt: skip
            return self.last_search
        current = self.derived()
        problems = self.space.derived_problems(current.ops, current.bits)
        result = best_of_n(
            problems, self.options.hw_samples, self.hw_generator, self.settings.hw, hw_model=self.settings.hw_model
        )
        self.hw_searches += 1
        if result.accelerator != self.hw_cost.accelerator:
            self.hw_cost.refresh(result.accelerator)
        self.last_search = result
        return result

    # --- checkpoints ----------------------------------------------------------------------------------------------
    def generators(self) -> dict[str, torch.Generator]:
        """The named RNGs a checkpoint must carry besides the global ones."""
        return {"gumbel": self.supernet.arch.generator, "hw_search": self.hw_generator}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (with the RNG states and the loop position)."""
        return {
            **training_state(self),
            "accelerator": self.accelerator.to_json(),
            "arch_steps": self.arch_steps,
            "hw_searches": self.hw_searches,
            "generator": self.generator.state_dict(),
            "refreshes": self.refreshes,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        load_training_state(self, state)
        self.arch_steps, self.hw_searches = state["arch_steps"], state["hw_searches"]
        if "generator" in state:  # checkpoints written before Auto-NBA could use JAQ's generator have none
            self.generator.load_state_dict(state["generator"])
            self.refreshes = state["refreshes"]
        accelerator = AcceleratorConfig.from_json(state["accelerator"])
        if accelerator != self.hw_cost.accelerator:
            self.hw_cost.refresh(accelerator)
