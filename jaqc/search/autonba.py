"""Auto-NBA (Fu et al., ICML 2021) as JAQ's baseline on the same pipeline: ``jaqc search --method autonba``.

The supernet, bit candidates, cost model, BatchTile mappings, E_HW normalisation, data and run directory are
JAQ's; what differs is how the search samples and how it finds the accelerator.

**Heterogeneous sampling** (the supernet in ``QuantSearchMode.HETERO``):

* *Weight step* (a batch of the weight split, CE, SGD with momentum and a cosine learning rate): the
  supernet's own forward pass — ops mixed by the Gumbel-softmax of α, as in JAQ — whose convs quantize with
  the **β-blend** of all bitwidths (Gumbel-softmax of β_w, β_a) computed inside one autograd node whose
  backward is the identity to the input (:func:`jaqc.nn.mixing.hetero_blend`), so nothing of the blend is
  stored. (A single sampled op per block here, as Auto-NBA's code does, did not train at all within the
  ``tiny`` preset's 80 steps: docs/autonba.md.)
* *Architecture step* (a batch of the architecture split, ``CE + λ·E_HW``, Adam on α, β_w, β_a): **hard top-2
  sampling** of ops and of each op's weight and activation bits — the two largest of ``logits + Gumbel noise``
  (two draws without replacement from ``softmax(logits)``); the first is the active one. Their gates
  (:func:`pair_gates`) are ``one_hot + p - p.detach()`` with ``p`` the softmax **renormalised over the
  pair** (ProxylessNAS): the forward pass is the active op at its active bits exactly, the gradient reaches
  only the two sampled logits. After the Adam step the two logits of every sampled pair are shifted by one
  offset so that their log-sum-exp is unchanged (ProxylessNAS' rescaling, Auto-NBA's ``offset``): the step
  moves probability within the pair, not to or from it. The step leaves the supernet's buffers (batch-norm
  running statistics, activation ranges) as they were: a single hard path has other statistics than the
  weight step's mixture, and letting it move them made the supernet's eval-mode accuracy collapse to chance.
* *Hardware cost*: a straight-through estimate on the sampled path — the same per-(block, op, bits) cost
  table JAQ uses (:class:`~jaqc.search.hw_binding.ExpectedHardwareCost`) weighted by the gates; its forward
  value is exactly the sampled path's energy and latency on the current accelerator, its gradient reaches the
  sampled logits. Normalised as JAQ's E_HW (``λE·E/E_ref + λL·L/L_ref + λA·A/A_ref``).

**Accelerator search**: best-of-N random sampling (:func:`best_of_n`) instead of JAQ's generation network —
``hw_samples`` accelerators drawn uniformly from :class:`~jaqc.hw.space.AcceleratorSpace`, each scored by
E_HW of the currently derived subnet (argmax α, β) at its BatchTile mappings; the best is kept. It runs
before architecture step 0 and every ``hw_every`` architecture steps (not at all while λ = 0: then the
architecture ignores the hardware), and once more for the final subnet. Data: a 50/50 stratified
weight / architecture split (JAQ: 80/20).

Options (``options=`` / ``jaqc search --method autonba``): ``hw_every`` (int, default 100), ``hw_samples``
(int, default 64). The preset's ``epochs``, ``lr``, ``arch_lr``, ``batch_size``, ``lam``, ``hw`` and
``seed`` apply; its generator settings do not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs
import torch
import torch.nn.functional as F
from attrs import frozen
from torch import Tensor

from jaqc.hw.generator_training import REFERENCE_ACCELERATOR
from jaqc.hw.hw_objective import HardwareWeights, NetworkTotals, mapped_totals, mapped_totals_each
from jaqc.hw.problem import ConvProblem
from jaqc.hw.space import AcceleratorSpace
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.ir.errors import JaqcError
from jaqc.nn.config import QuantSearchMode, SearchStep, SupernetConfig
from jaqc.nn.gumbel import sample_gumbel
from jaqc.nn.supernet import Supernet

from .ablation import share_of_2bit
from .distributed import average_gradients, fingerprint, ranks_agree
from .hw_binding import ExpectedHardwareCost
from .jaq import DerivedArchitecture, JaqSearchSettings, derive_architecture
from .outputs import accuracy, hardware_figures, mapped_subnet, write_search_outputs
from .presets import SearchPreset
from .rundir import write_summary
from .runner import SearchOutcome, SearchRun
from .space_costs import SpaceCosts

#: Share of the training split the architecture steps use (Auto-NBA: 50/50; JAQ: 20%).
ARCH_FRACTION = 0.5
#: Ops and bits sampled per architecture step (Auto-NBA / ProxylessNAS: two).
TOP_K = 2
#: Offset of the accelerator-sampling seed from the run seed (its own stream, checkpointed).
HW_SEED_OFFSET = 7919


# --- options ------------------------------------------------------------------------------------------------------


@frozen(kw_only=True)
class AutoNbaOptions:
    """The method's options: accelerator re-search period (architecture steps) and samples per search."""

    hw_every: int = 100
    hw_samples: int = 64

    def to_json(self) -> dict[str, int]:
        """``{"hw_every": ..., "hw_samples": ...}``."""
        return attrs.asdict(self)


def parse_options(options: Mapping[str, Any] | None) -> AutoNbaOptions:
    """The options from a mapping (missing keys take their defaults); unknown keys and bad values are errors."""
    known = [a.name for a in attrs.fields(AutoNbaOptions)]
    values: dict[str, int] = {}
    for key, value in dict(options or {}).items():
        if key not in known:
            raise JaqcError(f"unknown autonba option {key!r}; expected one of {', '.join(known)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise JaqcError(f"autonba option {key} must be an integer >= 1, got {value!r}")
        values[key] = value
    return AutoNbaOptions(**values)


# --- sampling -----------------------------------------------------------------------------------------------------


def gumbel_top_k(logits: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """Indices ``[..., min(k, n)]`` of the ``k`` largest ``logits + Gumbel noise`` over the last dimension.

    The first is a draw from ``softmax(logits)`` (Gumbel-max), the next ones draws without replacement from
    what remains. No gradient.
    """
    noise = sample_gumbel(logits.shape, generator).to(device=logits.device, dtype=logits.dtype)
    keys = logits.detach() + noise
    return torch.argsort(keys, dim=-1, descending=True, stable=True)[..., : min(k, logits.shape[-1])]


def pair_probs(logits: Tensor, order: Tensor) -> Tensor:
    """``softmax`` of the sampled logits only (renormalised over the sampled pair), ``[..., k]``."""
    return torch.softmax(logits.gather(-1, order), dim=-1)


def pair_gates(logits: Tensor, order: Tensor) -> Tensor:
    """Straight-through gates, shaped like ``logits``: zero outside ``order``; on ``order`` the value is one for
    the first (active) index and zero for the others, the gradient that of :func:`pair_probs`."""
    probs = pair_probs(logits, order)
    one_hot = torch.zeros_like(probs)
    one_hot[..., 0] = 1.0
    gate = one_hot + (probs - probs.detach())  # exactly the one-hot in the forward pass
    return torch.zeros_like(logits).scatter(-1, order, gate)


def conv_bit_probs(gates: Tensor, order: Tensor) -> Tensor:
    """What a HETERO conv's architecture step takes as bit "probabilities" to run the sampled pair.

    :func:`jaqc.nn.mixing.hard_top_k_mix` keeps the top-k by value, runs the first and passes
    ``w - w.detach()`` as gradient to each; adding 1 at both sampled positions ranks active > other sampled >
    the rest, so it runs exactly the sampled pair with the :func:`pair_gates` gradients.
    """
    return gates + torch.zeros_like(gates).scatter(-1, order, 1.0)


@torch.no_grad()
def keep_pair_mass(logits: Tensor, before: Tensor, order: Tensor, rows: Tensor | None = None) -> None:
    """Shift the sampled logits of each row by one offset so their log-sum-exp equals that of ``before``
    (ProxylessNAS' rescaling after an update); ``rows`` (bool, ``logits.shape[:-1]``) limits it."""
    offset = before.gather(-1, order).logsumexp(-1, keepdim=True) - logits.gather(-1, order).logsumexp(-1, keepdim=True)
    if rows is not None:
        offset = offset * rows.unsqueeze(-1).to(offset.dtype)
    logits.scatter_add_(-1, order, offset.expand(order.shape).contiguous())


# --- accelerator search -------------------------------------------------------------------------------------------


@frozen(kw_only=True)
class HardwareSearchResult:
    """The best of the sampled accelerators, with every sample's totals (None: no mapping fits) and E_HW."""

    accelerator: AcceleratorConfig
    totals: NetworkTotals
    e_hw: float
    reference: NetworkTotals
    accelerators: tuple[AcceleratorConfig, ...]
    sample_totals: tuple[NetworkTotals | None, ...]
    scores: tuple[float, ...]

    @property
    def best_index(self) -> int:
        """The position of the best accelerator among the samples."""
        return self.accelerators.index(self.accelerator)

    def to_json(self) -> dict[str, Any]:
        """The chosen accelerator and its figures (for metrics and the summary)."""
        return {
            "accelerator": self.accelerator.to_json(),
            "e_hw": self.e_hw,
            "energy_nJ": self.totals.energy_nJ,
            "latency_s": self.totals.latency_s,
            "area_mm2": self.totals.area_mm2,
            "edap_nJ_s_mm2": self.totals.edap,
            "samples": len(self.accelerators),
            "feasible": sum(t is not None for t in self.sample_totals),
        }


def best_of_n(
    problems: Sequence[ConvProblem],
    count: int,
    generator: torch.Generator | int,
    weights: HardwareWeights | None = None,
    space: AcceleratorSpace | None = None,
    reference: NetworkTotals | None = None,
    hw_model: str = "deployment",
) -> HardwareSearchResult:
    """Auto-NBA's accelerator search: ``count`` accelerators drawn uniformly from ``space`` (with
    :meth:`AcceleratorSpace.sample`; the sampled loop order is not used, BatchTile picks each layer's), each
    scored by E_HW of the subnet ``problems`` at its BatchTile mappings; the lowest wins (the first on ties).

    ``reference`` normalises E_HW (default: the subnet on JAQ's Table 2 accelerator, as the generator uses).
    """
    if count < 1:
        raise JaqcError(f"best_of_n: the number of sampled accelerators must be >= 1, got {count}")
    weights = weights or HardwareWeights()
    space = space or AcceleratorSpace()
    reference = reference or mapped_totals(problems, REFERENCE_ACCELERATOR, hw_model=hw_model)
    accelerators = tuple(point.accelerator for point in space.sample(count, generator))
    totals = tuple(mapped_totals_each(problems, accelerators, hw_model))
    scores = tuple(math.inf if t is None else t.e_hw(weights, reference) for t in totals)
    best = min(range(count), key=lambda i: (scores[i], i))
    chosen = totals[best]
    if chosen is None:
        raise JaqcError(f"autonba: none of the {count} sampled accelerators can map the subnet; sample more")
    return HardwareSearchResult(
        accelerator=accelerators[best],
        totals=chosen,
        e_hw=scores[best],
        reference=reference,
        accelerators=accelerators,
        sample_totals=totals,
        scores=scores,
    )


# --- the engine ---------------------------------------------------------------------------------------------------


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
        self.arch_steps = 0
        self.hw_searches = 0
        self.last_search: HardwareSearchResult | None = None

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
        """One SGD step of the supernet: ops mixed by Gumbel-softmax α, bits β-blended with identity backward."""
        net = self.supernet
        net.train()
        net.set_search_step(SearchStep.WEIGHTS)
        self.weight_opt.zero_grad(set_to_none=True)
        logits = net(images)  # HETERO + WEIGHTS: every conv takes the β-blend (jaqc.nn.mixing.hetero_blend)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        average_gradients(net.weight_parameters())
        self.weight_opt.step()
        self.schedule.step()
        return {
            "w_loss": float(loss.detach()),
            "w_acc": _accuracy(logits, labels),
            "lr": self.schedule.get_last_lr()[0],
        }

    def arch_step(self, images: Tensor, labels: Tensor) -> dict[str, Any]:
        """One Adam step of α, β on CE + λ·E_HW over the sampled top-2 path; re-searches the accelerator first
        every ``hw_every`` steps."""
        record: dict[str, Any] = {}
        if self.hardware_aware and self.arch_steps % self.options.hw_every == 0:
            record["hw_search"] = self.search_hardware().to_json()
        net = self.supernet
        net.train()
        net.set_search_step(SearchStep.ARCH)
        arch = net.arch
        self.arch_opt.zero_grad(set_to_none=True)
        buffers = list(net.buffers())  # BN running statistics, activation ranges
        saved = [buffer.detach().clone() for buffer in buffers]
        path = self.sample_path()
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
        self.weight_opt.zero_grad(set_to_none=True)  # the arch forward also reached the weights
        ran = torch.zeros(arch.alpha.shape, dtype=torch.bool).scatter(-1, path.op_order, True)
        keep_pair_mass(arch.alpha.data, before[0], path.op_order)
        keep_pair_mass(arch.beta_w.data, before[1], path.w_order, ran)
        keep_pair_mass(arch.beta_a.data, before[2], path.a_order, ran)
        self.arch_steps += 1
        record.update(
            {
                "a_loss": float(loss.detach()),
                "a_ce": float(ce.detach()),
                "a_acc": _accuracy(logits, labels),
                "e_hw": float(e_hw.detach()),
                **{f"path_{k}": v for k, v in parts.items()},
            }
        )
        return record

    # --- hardware -------------------------------------------------------------------------------------------------
    def derived(self) -> DerivedArchitecture:
        """argmax α per block; argmax β_w, β_a of the chosen op (ties: the first), as JAQ derives it."""
        return derive_architecture(self.space, self.supernet)

    def search_hardware(self) -> HardwareSearchResult:
        """Best-of-N accelerator for the current subnet; the cost table follows it."""
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
            "supernet": self.supernet.state_dict(),
            "csq": self.supernet.csq_state(),
            "weight_opt": self.weight_opt.state_dict(),
            "schedule": self.schedule.state_dict(),
            "arch_opt": self.arch_opt.state_dict(),
            "accelerator": self.accelerator.to_json(),
            "arch_steps": self.arch_steps,
            "hw_searches": self.hw_searches,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.supernet.load_state_dict(state["supernet"])
        if "csq" in state:  # (older checkpoints lack it: Ω is then recomputed at the next training step)
            self.supernet.load_csq_state(state["csq"])
        self.weight_opt.load_state_dict(state["weight_opt"])
        self.schedule.load_state_dict(state["schedule"])
        self.arch_opt.load_state_dict(state["arch_opt"])
        self.arch_steps, self.hw_searches = state["arch_steps"], state["hw_searches"]
        accelerator = AcceleratorConfig.from_json(state["accelerator"])
        if accelerator != self.hw_cost.accelerator:
            self.hw_cost.refresh(accelerator)


def _accuracy(logits: Tensor, labels: Tensor) -> float:
    return float((logits.detach().argmax(dim=-1) == labels).float().mean())


# --- the run ------------------------------------------------------------------------------------------------------


class AutoNbaRun(SearchRun):
    """One Auto-NBA search in one run directory, resumable exactly: JAQ's run loop and layout
    (:class:`~jaqc.search.runner.SearchRun`) with Auto-NBA's engine, 50/50 split, options and outputs."""

    method: ClassVar[str] = "autonba"
    arch_fraction = ARCH_FRACTION
    progress_label = "autonba search"

    def __init__(
        self,
        preset: SearchPreset,
        run_dir: str | Path,
        *,
        resume: bool = False,
        recipe: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(preset, run_dir, resume=resume, recipe=recipe, options=options)

    def _parse_options(self, options: Mapping[str, Any] | None) -> AutoNbaOptions:
        return parse_options(options)

    def _resumed_options(self, config: Any, given: Mapping[str, Any] | None) -> AutoNbaOptions:
        method = config.get("method") if isinstance(config, dict) else None
        if method != self.method:
            raise JaqcError(f"{self.run_dir}: a run of method {method!r}, not {self.method!r}")
        saved = parse_options(config.get("options"))
        if given is not None and self.options != saved:
            raise JaqcError(f"{self.run_dir}: resume with the run's own options {saved.to_json()}, not {dict(given)}")
        return saved

    def _options_json(self) -> dict[str, Any]:
        return self.options.to_json()

    def _search_preset(self, preset: SearchPreset) -> SearchPreset:
        return attrs.evolve(preset, supernet=hetero_config(preset.supernet))

    def _make_engine(self) -> AutoNbaSearch:
        return AutoNbaSearch(self.preset.supernet, self.preset.settings, self.options, self.steps_per_epoch)

    def _generators(self) -> dict[str, torch.Generator]:
        return self.engine.generators()

    def _epoch_record(self, epoch: int, step: int) -> dict[str, Any]:
        derived = self.engine.derived()
        _, subnet_acc = self._subnet_accuracy(derived)
        record = {"step": step, "epoch": epoch, "val_acc": self._supernet_accuracy()}
        return {**record, "subnet_val_acc": subnet_acc, "derived": derived.to_json()}

    def _subnet_accuracy(self, derived: DerivedArchitecture) -> tuple[Any, float]:
        from jaqc.nn.subnet import DerivedSubnet

        subnet = DerivedSubnet(self.preset.supernet, derived.ops, derived.bits)
        subnet.load_from_supernet(self.engine.supernet)
        return subnet, accuracy(subnet, self.splits.val, self.preset.batch_size)

    def _supernet_accuracy(self) -> float:
        """The supernet in eval mode (softmax α over the ops, β-blended bits), as JAQ's runner reports it."""
        self.engine.supernet.set_search_step(SearchStep.WEIGHTS)
        return accuracy(self.engine.supernet, self.splits.val, self.preset.batch_size)

    def finish(self) -> SearchOutcome:
        """The final subnet, its best-of-N accelerator, the outputs, the summary and the plots."""
        from .plots import plot_architecture, plot_hardware, plot_training

        preset, engine, out = self.preset, self.engine, self.run_dir
        start = time.perf_counter()
        derived = engine.derived()
        search = engine.search_hardware()
        subnet, val_acc = self._subnet_accuracy(derived)
        graph, schedule = mapped_subnet(
            subnet, subnet.example_input_shape, search.accelerator, model_name=f"{preset.name}-subnet",
            hw_model=preset.settings.hw_model,
        )  # fmt: skip
        if self.rundir.is_writer:
            write_search_outputs(out, graph, schedule, derived.to_json(), search.accelerator)
        arch = engine.supernet.arch
        agree = ranks_agree(fingerprint(arch.alpha, arch.beta_w, arch.beta_a, search.accelerator.to_json()))
        summary = {
            "method": self.method,
            "preset": preset.name,
            "options": self.options.to_json(),
            "ranks": self.world,
            "ranks_agree": agree,
            "architecture": derived.to_json(),
            "identity_blocks": self.engine.space.identity_blocks(derived.ops),
            "accelerator": search.accelerator.to_json(),
            **hardware_figures(schedule),
            "val_acc": val_acc,
            "supernet_val_acc": self._supernet_accuracy(),
            "share_of_2bit": share_of_2bit(derived.to_json(), preset.supernet),
            "hw_searches": engine.hw_searches,
            "final_hw_search": search.to_json(),
            "finish_seconds": time.perf_counter() - start,
            "search_seconds": self.elapsed_seconds(),
        }
        if self.rundir.is_writer:
            write_summary(out, summary)
            records = self.rundir.read_metrics()
            hardware = [
                {**r, **{f"expected_{k[5:]}": v for k, v in r.items() if k.startswith("path_")}} for r in records
            ]
            plot_training(records, out / "plots" / "training.png", f"Auto-NBA search ({preset.name})")
            plot_hardware(hardware, out / "plots" / "hardware.png", f"sampled-path hardware cost ({preset.name})")
            plot_architecture(
                derived.ops, derived.bits, out / "plots" / "architecture.png", "derived subnet",
                summary["identity_blocks"],
            )  # fmt: skip
        return SearchOutcome(run_dir=out, summary=summary)
