"""The JAQ bi-level search engine: weight steps, architecture steps bound to hardware cost, and the
hardware generation network refreshing the accelerator (JAQ, "The Overall Joint Pipeline").

Each iteration: a **weight step** (CE on a batch of the weight split; SGD with momentum, cosine learning
rate) and an **architecture step** (CE + λ·E_HW on a batch of the architecture split; Adam on α, β and the
batch-norm scales γ that steer CSQ's channel importance). E_HW is the expected hardware cost of the supernet
under α and β (:class:`~jaqc.search.hw_binding.ExpectedHardwareCost`). Every ``hw_refresh_every``
architecture steps the current subnet (argmax α, β) is derived, the hardware generation network is trained
a few more steps on it, and the candidate cost table is rebuilt for the accelerator it generates.

The engine holds no data and writes no files: the runner feeds batches and checkpoints ``state_dict()``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from attrs import asdict, field, frozen
from torch import Tensor, nn

from jaqc.core import JaqcError
from jaqc.device import autocast, to_device
from jaqc.hw.generator.network import HardwareGenerator
from jaqc.hw.generator.objective import HardwareWeights
from jaqc.hw.generator.training import GeneratedDesign
from jaqc.ir.accelerator import AcceleratorConfig
from jaqc.nn.config import ScheduleKind, SearchStep, SupernetConfig, TemperatureSchedule
from jaqc.nn.supernet import Supernet

from .distributed import average_gradients
from .hw_binding import ExpectedHardwareCost
from .space_costs import SearchChoices, SpaceCosts, shape_space


def _positive(_inst: object, attribute: Any, value: float) -> None:
    if not value > 0 or value == float("inf"):  # (NaN compares false)
        raise JaqcError(f"search setting {attribute.name} must be a finite number > 0, got {value!r}")


def _nonneg(_inst: object, attribute: Any, value: float) -> None:
    if not value >= 0 or value == float("inf"):  # (NaN compares false)
        raise JaqcError(f"search setting {attribute.name} must be a finite number >= 0, got {value!r}")


def _fraction(_inst: object, attribute: Any, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise JaqcError(f"search setting {attribute.name} must be in [0, 1), got {value!r}")


#: The default final Gumbel temperature (FBNet's schedule, 5 · 0.956^90 ≈ 0.09, ends near it after 90 epochs).
DEFAULT_FINAL_TEMPERATURE = 0.1
#: The default share of weight-only warm-up epochs (FBNet: 10 of 90).
DEFAULT_WARMUP_FRACTION = 0.1


def _pipeline(_inst: object, attribute: Any, value: str) -> None:
    if not isinstance(value, str):
        raise JaqcError(f"search setting {attribute.name} must be a pass pipeline string, got {value!r}")
    if value:
        from jaqc.passes import parse_pipeline

        parse_pipeline(value)  # unknown passes and bad options fail before anything runs


def _amp(_inst: object, attribute: Any, value: str) -> None:
    from jaqc.device import AMP_MODES

    if value not in AMP_MODES:
        raise JaqcError(f"search setting {attribute.name} must be one of {', '.join(AMP_MODES)}, got {value!r}")


def _hw_model(_inst: object, attribute: Any, value: str) -> None:
    from jaqc.ir.accelerator import check_hw_model

    if value is None:
        raise JaqcError(f"search setting {attribute.name} must name a hardware model")
    check_hw_model(value, f"search setting {attribute.name}")


@frozen(kw_only=True)
class JaqSearchSettings:
    """Optimisation settings of the search (defaults: the paper's CIFAR settings where it gives them).

    ``lam`` is λ of Eq. 4 applied to the normalised E_HW (≈1 for the uniform supernet on the reference
    design), so its scale differs from the paper's raw-unit λ (0.0005..0.004).
    """

    epochs: int = field(default=90, validator=_positive)
    lr: float = field(default=0.01, validator=_positive)
    momentum: float = field(default=0.9, validator=_nonneg)
    weight_decay: float = field(default=5e-4, validator=_nonneg)
    arch_lr: float = field(default=3e-3, validator=_positive)
    lam: float = field(default=0.5, validator=_nonneg)
    hw: HardwareWeights = field(factory=HardwareWeights)
    hw_refresh_every: int = field(default=50, validator=_positive)
    generator_steps: int = field(default=10, validator=_positive)
    seed: int = 0
    #: The hardware cost model every hardware figure of the run comes from (docs/cost_model.md).
    hw_model: str = field(default="deployment", validator=_hw_model)
    #: A pass pipeline run on the traced supernet before the search prices it: passes that remove candidates of
    #: a choice layer or narrow its bits restrict what that block may choose (docs/search.md, "Search passes").
    passes: str = field(default="", validator=_pipeline)
    #: The Gumbel temperature the search ends at: it anneals exponentially, step by step, from the supernet's
    #: initial temperature (T0 = 5) at the first search step to this one at the last, whatever the run's length.
    final_temperature: float = field(default=DEFAULT_FINAL_TEMPERATURE, validator=_positive)
    #: Share of the run's steps that train the weights only (no architecture step, no hardware refresh) before
    #: the search starts, rounded to whole steps (FBNet and Auto-NBA warm the weights first).
    warmup_fraction: float = field(default=DEFAULT_WARMUP_FRACTION, validator=_fraction)
    #: Mixed precision of the supernet's forward passes: ``off`` (float32) or ``bf16`` (bfloat16 autocast; its
    #: effect on the derived architecture is in docs/search.md, "Devices and mixed precision").
    amp: str = field(default="off", validator=_amp)

    def warmup_steps(self, steps_per_epoch: int) -> int:
        """Weight-only steps of a run with ``steps_per_epoch`` steps an epoch: ``warmup_fraction`` of its steps,
        rounded half up, leaving at least one search step."""
        total = self.epochs * steps_per_epoch
        return min(total - 1, math.floor(self.warmup_fraction * total + 0.5))

    def temperature_schedule(self, initial: float) -> TemperatureSchedule:
        """The search's schedule: ``initial`` annealed to :attr:`final_temperature` step by step over the steps
        after the warm-up (:meth:`~jaqc.nn.config.TemperatureSchedule.temperature_at_step`)."""
        return TemperatureSchedule(
            initial=initial, kind=ScheduleKind.ANNEAL, final=self.final_temperature, epochs=self.epochs
        )

    def schedule_record(self, steps_per_epoch: int) -> dict[str, int]:
        """The step schedule of a run with ``steps_per_epoch`` steps an epoch (``config.json``'s ``schedule``)."""
        total = self.epochs * steps_per_epoch
        warmup = self.warmup_steps(steps_per_epoch)
        return {
            "steps_per_epoch": steps_per_epoch, "steps": total, "warmup_steps": warmup, "anneal_steps": total - warmup,
        }  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the run directory's config snapshot)."""
        return asdict(self)


@frozen(kw_only=True)
class DerivedArchitecture:
    """The current subnet: one op and one (w_bits, a_bits) per searchable block."""

    ops: tuple[str, ...]
    bits: tuple[tuple[int, int], ...]

    def to_json(self) -> dict[str, Any]:
        """``{"ops": [...], "bits": [[w, a], ...]}``."""
        return {"ops": list(self.ops), "bits": [list(b) for b in self.bits]}


#: A derived choice whose softmax probability leads the runner-up's by less than this is reported as a warning
#: (``summary.json``: ``margins``, ``margin_warnings``): the search did not decide it.
MARGIN_THRESHOLD = 0.05


def _gap(probs: Tensor) -> tuple[float, int, int]:
    """(chosen − runner-up probability, chosen index, runner-up index); the runner-up of a lone choice has 0."""
    order = torch.argsort(probs, descending=True, stable=True)
    first = int(order[0])
    if probs.numel() < 2:
        return float(probs[first]), first, first
    second = int(order[1])
    return float(probs[first] - probs[second]), first, second


def choice_margins(supernet: Supernet, derived: DerivedArchitecture, identity: list[bool]) -> dict[str, Any]:
    """Per block, how far the derived choice leads the runner-up in softmax(α) and, for the chosen op, in
    softmax(β_w) and softmax(β_a); and a warning for each margin below :data:`MARGIN_THRESHOLD` (bits of
    identity blocks are not reported: they mean nothing)."""
    config, arch = supernet.config, supernet.arch
    with torch.no_grad():
        alpha, beta_w, beta_a = arch.alpha_probs(), arch.beta_w_probs(), arch.beta_a_probs()
    margins: dict[str, list[float]] = {"alpha": [], "beta_w": [], "beta_a": []}
    warnings: list[str] = []
    names = {"beta_w": ("w bits", config.quant.weight_bits), "beta_a": ("a bits", config.quant.activation_bits)}
    for block, op in enumerate(derived.ops):
        o = config.candidates.index(op)
        gap, _, second = _gap(alpha[block])
        margins["alpha"].append(gap)
        if gap < MARGIN_THRESHOLD:
            warnings.append(
                f"block {block}: op {op} leads {config.candidates[second]} by {gap:.3f} (< {MARGIN_THRESHOLD})"
            )
        for key, probs in (("beta_w", beta_w), ("beta_a", beta_a)):
            gap, first, second = _gap(probs[block, o])
            margins[key].append(gap)
            label, bits = names[key]
            if gap < MARGIN_THRESHOLD and not identity[block]:
                warnings.append(
                    f"block {block}: {label} {bits[first]} lead {bits[second]} by {gap:.3f} (< {MARGIN_THRESHOLD})"
                )
    return {"margins": {**margins, "threshold": MARGIN_THRESHOLD}, "margin_warnings": warnings}


def training_state(engine: Any) -> dict[str, Any]:
    """What every Gumbel-softmax search engine checkpoints of its training: the supernet's weights and CSQ state,
    the weight optimiser and its learning-rate schedule, the architecture optimiser."""
    return {
        "supernet": engine.supernet.state_dict(),
        "csq": engine.supernet.csq_state(),
        "weight_opt": engine.weight_opt.state_dict(),
        "schedule": engine.schedule.state_dict(),
        "arch_opt": engine.arch_opt.state_dict(),
    }


def load_training_state(engine: Any, state: Mapping[str, Any]) -> None:
    """Restore :func:`training_state` output into ``engine``."""
    engine.supernet.load_state_dict(state["supernet"])
    if "csq" in state:  # (older checkpoints lack it: Ω is then recomputed at the next training step)
        engine.supernet.load_csq_state(state["csq"])
    engine.weight_opt.load_state_dict(state["weight_opt"])
    engine.schedule.load_state_dict(state["schedule"])
    engine.arch_opt.load_state_dict(state["arch_opt"])


def weight_step(engine: Any, images: Tensor, labels: Tensor) -> dict[str, float]:
    """The weight step every Gumbel-softmax search engine takes: one SGD step of ``engine.supernet``'s weights
    on CE (the supernet's own forward pass in the weight-step mode), gradients averaged over the ranks."""
    net = engine.supernet
    net.train()
    net.set_search_step(SearchStep.WEIGHTS)
    engine.weight_opt.zero_grad(set_to_none=True)
    images, labels = to_device((images, labels), engine.device)
    with autocast(engine.device, engine.settings.amp):
        logits = net(images)
        loss = F.cross_entropy(logits, labels)
    loss.backward()
    average_gradients(net.weight_parameters())
    engine.weight_opt.step()
    engine.schedule.step()
    return {
        "w_loss": float(loss.detach()),
        "w_acc": batch_accuracy(logits, labels),
        "lr": engine.schedule.get_last_lr()[0],
    }


def move_engine(engine: Any, device: torch.device | str) -> None:
    """Run a Gumbel-softmax search engine on ``device``: its supernet (and so its optimisers' state) and E_HW's
    cost tables move there, its steps move their batches there. The Gumbel noise keeps its CPU generator, so a
    draw is the same on every device."""
    engine.device = torch.device(device)
    engine.supernet.to(engine.device)
    engine.hw_cost.to(engine.device)


@contextlib.contextmanager
def gradients_only_for(module: nn.Module, params: Iterable[Tensor]) -> Iterator[None]:
    """Within the block, ``module``'s parameters other than ``params`` do not require grad.

    An architecture step's backward then computes no weight gradient it would throw away (a convolution's
    backward skips its weight half where the weight is a constant); the gradients of ``params`` are the same.
    """
    keep = {id(p) for p in params}
    frozen = [p for p in module.parameters() if p.requires_grad and id(p) not in keep]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


def batch_accuracy(logits: Tensor, labels: Tensor) -> float:
    """The share of ``labels`` the argmax of ``logits`` gets right."""
    return float((logits.detach().argmax(dim=-1) == labels).float().mean())


def derive_architecture(space: SpaceCosts, supernet: Supernet) -> DerivedArchitecture:
    """The subnet a supernet's architecture parameters select, through the one selection rule of the
    ``extract-subnet`` pass applied to the traced space (:meth:`SpaceCosts.derive`): argmax α per block; argmax
    β_w, β_a of the chosen op (ties: the first)."""
    arch = supernet.arch
    with torch.no_grad():
        ops, bits = space.derive(arch.alpha_probs(), arch.beta_w_probs(), arch.beta_a_probs())
    return DerivedArchitecture(ops=ops, bits=bits)


def refresh_with_generator(engine: Any, steps: int) -> GeneratedDesign:
    """Train ``engine``'s hardware generator ``steps`` steps on the subnet its α and β derive and rebuild its cost
    table for the generated accelerator: the ``extract-subnet`` and ``generate-accelerator`` passes on the traced
    space (the generator's state carried from refresh to refresh in the pass context, the seed moving with the
    refresh count). ``engine`` has ``supernet``, ``space``, ``settings``, ``generator``, ``refreshes``,
    ``hw_cost`` and ``design`` (JAQ's engine, and Auto-NBA's when it shares JAQ's generator)."""
    from jaqc.passes import PassContext, PassManager
    from jaqc.passes.generate_accelerator import GenerateAccelerator

    arch, hw = engine.supernet.arch, engine.settings.hw
    with torch.no_grad():
        subnet = engine.space.derived_subnet(arch.alpha_probs(), arch.beta_w_probs(), arch.beta_a_probs())
    generate = GenerateAccelerator(
        steps=steps, lambda_e=hw.energy, lambda_l=hw.latency, lambda_a=hw.area, form=hw.form,
        seed=engine.settings.seed + engine.refreshes, hw_model=engine.settings.hw_model,
    )  # fmt: skip
    ctx = PassContext(data={"hardware_generator": engine.generator})
    PassManager([generate]).run(subnet, ctx)
    engine.generator, design = ctx.data["hardware_generator"], ctx.data["generated_design"]
    engine.refreshes += 1
    if design.accelerator != engine.hw_cost.accelerator:
        engine.hw_cost.refresh(design.accelerator)
    engine.design = design
    return design


class JaqSearch:
    """One JAQ search: the supernet, both optimisers, the hardware cost and the hardware generator."""

    def __init__(self, config: SupernetConfig, settings: JaqSearchSettings, steps_per_epoch: int) -> None:
        if steps_per_epoch < 1:
            raise JaqcError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        torch.manual_seed(settings.seed)
        self.config = config
        self.settings = settings
        self.supernet = Supernet(config)
        self.device = torch.device("cpu")  # see to()
        self.weight_opt = torch.optim.SGD(
            self.supernet.weight_parameters(), lr=settings.lr, momentum=settings.momentum,
            weight_decay=settings.weight_decay,
        )  # fmt: skip
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.weight_opt, T_max=settings.epochs * steps_per_epoch
        )
        gammas = [m.weight for m in self.supernet.modules() if isinstance(m, nn.BatchNorm2d) and m.affine]
        self.arch_opt = torch.optim.Adam(
            [{"params": self.supernet.arch_parameters()}, {"params": gammas}],
            lr=settings.arch_lr, betas=(0.5, 0.999),
        )  # fmt: skip
        #: The space's hardware side, read from the supernet's IR (traced once); search passes narrow the choices.
        self.space = SpaceCosts.from_supernet(self.supernet)
        self.choices: SearchChoices | None = None
        if settings.passes:
            quant = config.quant
            self.choices = shape_space(self.space.graph, settings.passes, quant.weight_bits)
            self.supernet.arch.restrict(
                *self.choices.masks(config.candidates, quant.weight_bits, quant.activation_bits)
            )
        self.hw_cost = ExpectedHardwareCost.for_supernet(
            self.supernet, settings.hw, hw_model=settings.hw_model, space=self.space
        )
        self.generator = HardwareGenerator()
        self.design: GeneratedDesign | None = None
        self.arch_steps = 0
        self.refreshes = 0

    def to(self, device: torch.device | str) -> JaqSearch:
        """Run the search on ``device`` (:func:`move_engine`)."""
        move_engine(self, device)
        return self

    # --- the two steps -------------------------------------------------------------------------------
    def weight_step(self, images: Tensor, labels: Tensor) -> dict[str, float]:
        """One SGD step of the supernet weights on a batch of the weight split."""
        return weight_step(self, images, labels)

    def arch_step(self, images: Tensor, labels: Tensor) -> dict[str, float]:
        """One Adam step of α, β and γ on CE + λ·E_HW; refreshes the accelerator every few steps."""
        self.supernet.train()
        self.supernet.set_search_step(SearchStep.ARCH)
        self.arch_opt.zero_grad(set_to_none=True)
        trained = [p for group in self.arch_opt.param_groups for p in group["params"]]
        images, labels = to_device((images, labels), self.device)
        with gradients_only_for(self.supernet, trained):
            with autocast(self.device, self.settings.amp):
                logits = self.supernet(images)
                ce = F.cross_entropy(logits, labels)
            arch = self.supernet.arch
            e_hw, parts = self.hw_cost(arch.alpha_probs(), arch.beta_w_probs(), arch.beta_a_probs())
            loss = ce + self.settings.lam * e_hw.to(ce.dtype)
            loss.backward()
        average_gradients(trained)
        self.arch_opt.step()
        self.arch_steps += 1
        if self.arch_steps % self.settings.hw_refresh_every == 0:
            self.refresh_hardware()
        return {
            "a_loss": float(loss.detach()),
            "a_ce": float(ce.detach()),
            "a_acc": batch_accuracy(logits, labels),
            "e_hw": float(e_hw.detach()),
            **{f"expected_{k}": v for k, v in parts.items()},
        }

    # --- hardware ------------------------------------------------------------------------------------
    def derived(self) -> DerivedArchitecture:
        """argmax α per block; argmax β_w, β_a of the chosen op (ties: the first)."""
        return derive_architecture(self.space, self.supernet)

    def refresh_hardware(self, steps: int | None = None) -> GeneratedDesign:
        """Train the generator on the current subnet and rebuild the cost table for its accelerator
        (:func:`refresh_with_generator`, ``generator_steps`` steps unless told otherwise)."""
        return refresh_with_generator(self, steps or self.settings.generator_steps)

    @property
    def accelerator(self) -> AcceleratorConfig | None:
        """The accelerator E_HW is currently measured on."""
        return self.hw_cost.accelerator

    # --- checkpoints ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the search exactly (with the runner's RNG and loop position)."""
        return {
            **training_state(self),
            "generator": self.generator.state_dict(),
            "accelerator": None if self.accelerator is None else self.accelerator.to_json(),
            "arch_steps": self.arch_steps,
            "refreshes": self.refreshes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        load_training_state(self, state)
        self.generator.load_state_dict(state["generator"])
        self.arch_steps, self.refreshes = state["arch_steps"], state["refreshes"]
        if state["accelerator"] is not None:
            accelerator = AcceleratorConfig.from_json(state["accelerator"])
            if accelerator != self.hw_cost.accelerator:
                self.hw_cost.refresh(accelerator)
