"""Auto-NBA (``--method autonba``): heterogeneous sampling, the straight-through hardware cost, best-of-N
accelerator search, the 50/50 split, options, run directory and exact resume, and the Table 7 2-bit share."""

from __future__ import annotations

import json
import math
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from jaqc.ir import AcceleratorConfig, LayerKind, load_graph, verify

from jaqc.core import JaqcError
from jaqc.data import DataConfig, labels_of
from jaqc.hw.generator.objective import HardwareWeights, mapped_totals
from jaqc.hw.generator.space import AcceleratorSpace
from jaqc.hw.generator.training import REFERENCE_ACCELERATOR
from jaqc.nn.config import QuantSearchMode, SearchStep, supernet_preset
from jaqc.nn.mixing import BitCandidates, hetero_blend, mix_quantized
from jaqc.search.ablation import share_of_2bit, undecided_share
from jaqc.search.autonba import (
    AutoNbaOptions,
    AutoNbaRun,
    AutoNbaSearch,
    best_of_n,
    conv_bit_probs,
    gumbel_top_k,
    keep_pair_mass,
    pair_gates,
    pair_probs,
    parse_options,
)
from jaqc.search.presets import search_preset
from jaqc.search.rundir import RunDir, without_time
from jaqc.search.space_costs import SpaceCosts

CANDIDATES = ("k3_e1", "k5_e1", "k3_e3", "skip")


def small_preset(**settings):  # type: ignore[no-untyped-def]
    """tiny on native 8x8 digits, 4 candidates, batch 128, 2 epochs: a search of 10 steps; JAQ's generator
    every 4 architecture steps, 2 steps each (3 at the end)."""
    preset = search_preset("tiny", epochs=2, seed=3, hw_refresh_every=4, generator_steps=2, **settings)
    return attrs.evolve(
        preset,
        supernet=supernet_preset("tiny", input_size=8, candidates=CANDIDATES),
        data=DataConfig(name="digits", resolution=8, channels=1),
        batch_size=128,
        checkpoint_every=3,
        final_generator_steps=3,
    )


#: The random accelerator search every 4 architecture steps, 3 samples; the mixture weight step.
OPTIONS = {"hw_every": 4, "hw_samples": 3, "hardware": "random", "weight_path": "mixture"}
#: The run the tests resume: the defaults (the single-path weight step, JAQ's generator).
RUN_OPTIONS = {"weight_path": "single", "hardware": "generator", "hw_every": 100, "hw_samples": 64}


def small_engine(lam: float = 0.5, **options: object) -> AutoNbaSearch:
    preset = small_preset(lam=lam)
    chosen = AutoNbaOptions(**{**OPTIONS, **options})  # type: ignore[arg-type]
    return AutoNbaSearch(preset.supernet, preset.settings, chosen, steps_per_epoch=5)


def batch(size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(size, 1, 8, 8, generator=generator), torch.randint(0, 10, (size,), generator=generator)


# --- the core mechanism -------------------------------------------------------------------------------------------


def test_blend_backward_is_identity() -> None:
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    probs = torch.tensor([0.2, 0.5, 0.3], requires_grad=True)
    lo, hi = x.detach().amin().expand(3), x.detach().amax().expand(3)
    candidates = BitCandidates(lo, hi, (2, 4, 8))
    out = hetero_blend(x, candidates, probs)
    assert torch.allclose(out, mix_quantized(x.detach(), candidates, probs.detach()), atol=1e-6)
    assert not torch.equal(out, x)  # it does quantize
    incoming = torch.randn_like(out)
    out.backward(incoming)
    assert torch.equal(x.grad, incoming)
    assert probs.grad is None  # β gets nothing from the weight step


def test_weight_step_gradients_pass_the_blend_unchanged() -> None:
    """In the weight step a searchable conv's weight gradient is that of the plain conv of the blends."""
    engine = small_engine()
    engine.supernet.set_search_step(SearchStep.WEIGHTS)
    conv = engine.supernet.block(1).candidates["k3_e1"].expand
    assert conv.mode is QuantSearchMode.HETERO
    x = torch.randn(2, conv.in_channels, 4, 4).abs()
    w_probs, a_probs = torch.tensor([0.1, 0.3, 0.6]), torch.tensor([0.5, 0.25, 0.25])
    out = conv(x, w_probs, a_probs)
    incoming = torch.randn_like(out)
    out.backward(incoming)
    blended_x = conv._mix(x, conv._activation_candidates(x), a_probs).detach()
    blended_w = conv._mix(conv.weight.detach(), conv._weight_bit_candidates(), w_probs).detach().requires_grad_()
    F.conv2d(blended_x, blended_w, None, conv.stride, conv.padding, 1, conv.groups).backward(incoming)
    assert torch.allclose(conv.weight.grad, blended_w.grad, atol=1e-6)


def test_gumbel_top_k_picks_distinct_candidates() -> None:
    logits = torch.randn(50, 9)
    order = gumbel_top_k(logits, 2, torch.Generator().manual_seed(1))
    assert order.shape == (50, 2) and bool((order[:, 0] != order[:, 1]).all())
    assert torch.equal(order, gumbel_top_k(logits, 2, torch.Generator().manual_seed(1)))  # seeded
    assert gumbel_top_k(logits[:, :1], 2, torch.Generator()).shape == (50, 1)  # k clipped to the candidates
    certain = torch.tensor([[0.0, 100.0, 0.0, 50.0]])  # the first is a draw from softmax(logits)
    assert gumbel_top_k(certain, 2, torch.Generator().manual_seed(2)).tolist() == [[1, 3]]


def test_pair_gates_values_renormalisation_and_gradient() -> None:
    logits = torch.randn(6, 5, requires_grad=True)
    order = gumbel_top_k(logits, 2, torch.Generator().manual_seed(3))
    probs = pair_probs(logits, order)
    assert torch.allclose(probs.sum(-1), torch.ones(6))  # renormalised over the pair
    expected = torch.softmax(torch.stack([logits[i, order[i]] for i in range(6)]), -1)
    assert torch.allclose(probs, expected)
    gates = pair_gates(logits, order)
    one_hot = torch.zeros(6, 5).scatter(-1, order[:, :1], 1.0)
    assert torch.equal(gates.detach(), one_hot)  # exactly the active one in the forward pass
    costs = torch.randn(6, 5)
    (gates * costs).sum().backward()
    sampled = torch.zeros(6, 5, dtype=torch.bool).scatter(-1, order, True)
    assert bool((logits.grad[~sampled] == 0).all()) and bool((logits.grad[sampled] != 0).all())
    c = costs.gather(-1, order)  # ProxylessNAS: dL/dα_i = Σ_j c_j p_j (δ_ij - p_i) over the pair
    analytic = c * probs - probs * (c * probs).sum(-1, keepdim=True)
    assert torch.allclose(logits.grad.gather(-1, order), analytic.detach(), atol=1e-6)


def test_arch_step_runs_the_sampled_path_and_grads_only_sampled_logits() -> None:
    engine = small_engine()
    net, arch = engine.supernet, engine.supernet.arch
    net.train()
    net.set_search_step(SearchStep.ARCH)
    images, labels = batch()
    path = engine.sample_path()
    w_probs, a_probs = conv_bit_probs(path.w_gates, path.w_order), conv_bit_probs(path.a_gates, path.a_order)
    logits = engine.forward_path(images, path.op_order.tolist(), w_probs, a_probs, path.op_gates)
    active = engine.forward_path(images, path.op_order[:, :1].tolist(), w_probs.detach(), a_probs.detach(), None)
    assert torch.equal(logits, active)  # the forward pass is the active op at its active bits
    F.cross_entropy(logits, labels).backward()
    ops = torch.zeros(arch.alpha.shape, dtype=torch.bool).scatter(-1, path.op_order, True)
    assert bool((arch.alpha.grad[~ops] == 0).all()) and bool((arch.alpha.grad[ops] != 0).all())
    for grad, order in ((arch.beta_w.grad, path.w_order), (arch.beta_a.grad, path.a_order)):
        bits = torch.zeros(grad.shape, dtype=torch.bool).scatter(-1, order, True) & ops[..., None]
        assert bool((grad[~bits] == 0).all())
        for b, o in enumerate(path.op_order[:, 0].tolist()):  # the inactive op's output (and bits) is gated off
            quantized = next(iter(net.block(b).ops()[o].quant_convs()), None) is not None
            assert bool((grad[b, o][bits[b, o]] != 0).all()) == quantized  # the identity skip has no bits


def test_hardware_estimate_is_the_sampled_paths_cost() -> None:
    engine = small_engine()
    engine.search_hardware()
    path = engine.sample_path()
    e_hw, parts = engine.hw_cost(path.op_gates, path.w_gates, path.a_gates)
    ops, bit_index = path.active()
    config = engine.config
    names = [config.candidates[o] for o in ops]
    bits = [(config.quant.weight_bits[w], config.quant.activation_bits[a]) for w, a in bit_index]
    exact = mapped_totals(SpaceCosts.from_config(config).derived_problems(names, bits), engine.accelerator)
    assert parts["energy_nJ"] == pytest.approx(exact.energy_nJ, rel=1e-12)
    assert parts["latency_s"] == pytest.approx(exact.latency_s, rel=1e-12)
    assert parts["area_mm2"] == pytest.approx(exact.area_mm2, rel=1e-12)
    w, ref = engine.settings.hw, engine.hw_cost.reference
    assert float(e_hw.detach()) == pytest.approx(exact.e_hw(w, ref), rel=1e-12)
    e_hw.backward()
    arch = engine.supernet.arch
    sampled = torch.zeros(arch.alpha.shape, dtype=torch.bool).scatter(-1, path.op_order, True)
    assert bool((arch.alpha.grad[~sampled] == 0).all()) and bool(arch.alpha.grad.abs().sum() > 0)


def test_keep_pair_mass_restores_the_pairs_log_sum_exp() -> None:
    before = torch.randn(3, 4, 5)
    order = gumbel_top_k(before, 2, torch.Generator().manual_seed(0))
    after = before + torch.randn(3, 4, 5)
    rows = torch.tensor([[True, False, True, True]] * 3)
    updated = after.clone()
    keep_pair_mass(updated, before, order, rows)
    lse = lambda t: t.gather(-1, order).logsumexp(-1)  # noqa: E731
    assert torch.allclose(lse(updated)[rows], lse(before)[rows], atol=1e-6)
    assert torch.equal(updated[~rows], after[~rows])
    untouched = torch.ones_like(before, dtype=torch.bool).scatter(-1, order, False)
    assert torch.equal(updated[untouched], after[untouched])
    assert torch.allclose(updated.gather(-1, order).diff(dim=-1), after.gather(-1, order).diff(dim=-1), atol=1e-6)


def test_arch_step_keeps_pair_mass_and_buffers_and_searches_hardware_on_schedule() -> None:
    engine = small_engine()
    arch = engine.supernet.arch
    images, labels = batch()
    engine.weight_step(images, labels)
    buffers = {name: b.clone() for name, b in engine.supernet.named_buffers()}
    for step in range(5):
        before, state = arch.alpha.detach().clone(), arch.generator.get_state()
        record = engine.arch_step(images, labels)
        for name, value in engine.supernet.named_buffers():  # BN statistics and activation ranges untouched
            assert torch.equal(value, buffers[name]), name
        assert ("hw_search" in record) == (step % OPTIONS["hw_every"] == 0)
        order = gumbel_top_k(before, 2, torch.Generator().set_state(state))  # the pair this step drew
        after = arch.alpha.detach()
        assert torch.allclose(after.gather(-1, order).logsumexp(-1), before.gather(-1, order).logsumexp(-1), atol=1e-5)
    assert engine.hw_searches == 2 and record["e_hw"] > 0
    unconstrained = small_engine(lam=0.0)
    record = unconstrained.arch_step(images, labels)
    assert "hw_search" not in record and unconstrained.hw_searches == 0  # λ = 0: the hardware plays no part


# --- accelerator search -------------------------------------------------------------------------------------------


def test_best_of_n_is_the_best_of_its_samples() -> None:
    config = supernet_preset("tiny", candidates=CANDIDATES)
    problems = SpaceCosts.from_config(config).derived_problems(
        ["k3_e1", "k5_e1", "skip", "k3_e3", "skip"], [(4, 4), (2, 8), (8, 8), (4, 2), (8, 4)]
    )
    weights = HardwareWeights()
    result = best_of_n(problems, 6, 11, weights)
    points = AcceleratorSpace().sample(6, 11)  # the same samples, scored one by one
    reference = mapped_totals(problems, REFERENCE_ACCELERATOR)
    scores = [mapped_totals(problems, p.accelerator).e_hw(weights, reference) for p in points]
    best = int(np.argmin(scores))
    assert result.accelerators == tuple(p.accelerator for p in points)
    assert result.accelerator == points[best].accelerator and result.best_index == best
    assert result.scores == pytest.approx(scores, rel=1e-12)
    assert result.e_hw == pytest.approx(min(scores), rel=1e-12) and len(set(scores)) == 6
    with pytest.raises(JaqcError, match="must be >= 1"):
        best_of_n(problems, 0, 0)


# --- options and the run ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hw_evry": 3}, "unknown autonba option 'hw_evry'; expected one of weight_path, hardware, hw_every, "),
        ({"weight_path": "hard"}, "autonba option weight_path must be one of single, mixture, got 'hard'"),
        ({"hardware": 3}, "autonba option hardware must be one of generator, random, got 3"),
        ({"hw_samples": 0}, "autonba option hw_samples must be an integer >= 1, got 0"),
        ({"hw_every": True}, "autonba option hw_every must be an integer >= 1, got True"),
        ({"hw_every": "5"}, "autonba option hw_every must be an integer >= 1, got '5'"),
    ],
)
def test_bad_options_are_rejected_up_front(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(JaqcError, match=message):
        AutoNbaRun(small_preset(), tmp_path / "run", options=options)
    assert not (tmp_path / "run").exists()
    assert parse_options(None) == AutoNbaOptions(
        weight_path="single", hardware="generator", hw_every=100, hw_samples=64
    )


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    run = AutoNbaRun(small_preset(), tmp_path_factory.mktemp("autonba") / "straight", options={})
    outcome = run.run(progress=False)
    assert outcome is not None
    return run, outcome


def test_weight_and_architecture_split_half_and_half(straight) -> None:  # type: ignore[no-untyped-def]
    run, _ = straight
    labels = labels_of(run.splits.train)
    weight, arch = list(run.weight_set.indices), list(run.arch_set.indices)
    assert sorted(weight + arch) == list(range(len(labels))) and not set(weight) & set(arch)
    for label in np.unique(labels):
        members = int((labels == label).sum())
        assert int((labels[arch] == label).sum()) == math.floor(0.5 * members + 0.5)
    assert (run.steps_per_epoch, run.arch_batches) == (len(weight) // 128, len(arch) // 128) == (5, 5)


def _outputs(run_dir: Path) -> dict:
    names = ("architecture.json", "accelerator.json", "schedule.json")
    out = {name: (run_dir / name).read_text() for name in names}
    out["metrics.jsonl"] = without_time(RunDir.open(run_dir).read_metrics())
    return out


def test_run_directory_and_exact_resume(straight, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run, outcome = straight
    out = outcome.run_dir
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["method"] == "autonba" and config["options"] == RUN_OPTIONS
    assert config["preset"]["supernet"]["quant"]["mode"] == "hetero"
    summary = json.loads((out / "summary.json").read_text())
    totals = json.loads((out / "schedule.json").read_text())["totals"]
    for key in ("latency_ms", "energy_mJ", "area_mm2", "edap_mJ_ms_mm2"):
        assert summary[key] == totals[key] > 0
    architecture = json.loads((out / "architecture.json").read_text())
    assert summary["architecture"] == architecture and len(architecture["ops"]) == 5
    assert summary["accelerator"] == json.loads((out / "accelerator.json").read_text())
    assert summary["method"] == "autonba" and summary["preset"] == "tiny"
    assert 0 <= summary["val_acc"] <= 1 and 0 <= summary["supernet_val_acc"] <= 1
    assert summary["search_seconds"] > 0 and summary["hw_searches"] == 3 + 1  # arch steps 0, 4, 8 (of 9) and the final
    assert summary["final_hw_search"]["generator_samples"] == 3 * 4  # final_generator_steps × samples per step
    assert summary["share_of_2bit"] == share_of_2bit(architecture, run.preset.supernet)
    subnet = load_graph(out / "subnet.json")
    verify(subnet)
    assert all(x.mapping is not None for x in subnet.layers_of(LayerKind.CONV2D, LayerKind.LINEAR))
    for plot in ("training.png", "hardware.png", "architecture.png"):
        assert (out / "plots" / plot).read_bytes().startswith(b"\x89PNG")
    records = run.rundir.read_metrics()
    warmup = config["schedule"]["warmup_steps"]  # 10 % of the 10 steps: the first one trains the weights only
    assert warmup == 1 and [r["step"] for r in records if "warmup" in r] == [1]
    assert [r["step"] for r in records if "hw_search" in r] == [2, 6, 10]  # architecture steps 0, 4 and 8
    assert [r["step"] for r in records if "val_acc" in r] == [5, 10]

    resumed_dir = tmp_path / "resumed"
    assert AutoNbaRun(small_preset(), resumed_dir, options={}).run(progress=False, stop_after_steps=8) is None
    assert not (resumed_dir / "architecture.json").exists()
    with pytest.raises(JaqcError, match="resume with the run's own options"):
        AutoNbaRun(small_preset(), resumed_dir, resume=True, options={"hw_every": 5})
    resumed = AutoNbaRun(small_preset(), resumed_dir, resume=True).run(progress=False)  # options from config.json
    assert resumed is not None
    assert _outputs(resumed_dir) == _outputs(out)
    assert resumed.summary["val_acc"] == summary["val_acc"]


def test_share_of_2bit() -> None:
    config = supernet_preset("tiny")  # blocks 0 and 2 keep shape (identity skip), 1, 3, 4 change it
    arch = {"ops": ["skip", "k3_e1", "skip", "k5_e1", "skip"], "bits": [[2, 2], [2, 8], [2, 2], [8, 8], [4, 2]]}
    assert share_of_2bit(arch, config) == {
        "layers": 3, "weight_2bit": 1 / 3, "activation_2bit": 1 / 3, "any_2bit": 2 / 3,
    }  # fmt: skip
    assert share_of_2bit(arch) == {"layers": 2, "weight_2bit": 0.5, "activation_2bit": 0.0, "any_2bit": 0.5}
    assert math.isnan(share_of_2bit({"ops": ["skip"], "bits": [[2, 2]]})["weight_2bit"])
    with pytest.raises(JaqcError, match="2 ops but 1 bit pairs"):
        share_of_2bit({"ops": ["k3_e1", "skip"], "bits": [[2, 2]]})
    with pytest.raises(JaqcError, match=r"bits\[0\] must be a \[w_bits, a_bits\] pair"):
        share_of_2bit({"ops": ["k3_e1"], "bits": [[2]]})


def test_undecided_share_counts_the_searchable_blocks_below_the_margin() -> None:
    config = supernet_preset("tiny")  # blocks 0 and 2 keep shape (identity skip), 1, 3, 4 change it
    arch = {"ops": ["skip", "k3_e1", "skip", "k5_e1", "skip"], "bits": [[2, 2], [2, 8], [2, 2], [8, 8], [4, 2]]}
    margins = {"alpha": [0.5] * 5, "beta_w": [0.0, 0.01, 0.0, 0.2, 0.049], "beta_a": [0.0, 0.05, 0.0, 0.3, 0.9],
               "threshold": 0.05}  # fmt: skip
    summary = {"architecture": arch, "margins": margins}
    # blocks 1, 3, 4 count: w 0.01 and 0.049 are below 0.05; a 0.05 is not (a margin equal to it is decided)
    assert undecided_share(summary, config) == {"weight_undecided": 2 / 3, "activation_undecided": 0.0}
    assert undecided_share(summary) == {"weight_undecided": 0.5, "activation_undecided": 0.0}  # every skip out
    missing = undecided_share({"architecture": arch})  # a method that records no margins (HQNAS)
    assert math.isnan(missing["weight_undecided"]) and math.isnan(missing["activation_undecided"])
    with pytest.raises(JaqcError, match="4 beta_w margins for 5 blocks"):
        undecided_share({"architecture": arch, "margins": {**margins, "beta_w": [0.1] * 4}})
    with pytest.raises(JaqcError, match="the summary has no architecture"):
        undecided_share({"margins": margins})


def test_single_path_weight_step_trains_only_the_sampled_path() -> None:
    engine = small_engine(weight_path="single")
    arch = engine.supernet.arch
    state = arch.generator.get_state()
    record = engine.weight_step(*batch())
    replay = AutoNbaSearch.__new__(AutoNbaSearch)  # the draw the step made, from the same generator state
    replay.supernet = engine.supernet
    arch.generator.set_state(state)
    ops, w_probs, a_probs = replay.sample_single_path()
    assert record["w_loss"] > 0 and all(len(block) == 1 for block in ops)
    assert bool((w_probs.sum(-1) == 1).all()) and bool((a_probs.sum(-1) == 1).all())  # one bitwidth each
    for index, block in enumerate(engine.supernet.search_blocks()):
        for op_index, op in enumerate(block.ops()):
            grads = [p.grad for p in op.parameters()]
            if op_index == ops[index][0]:
                assert any(g is not None and bool(g.abs().sum() > 0) for g in grads) or not grads
            else:  # an op that did not run gets no gradient
                assert all(g is None for g in grads)
    assert arch.alpha.grad is None and arch.beta_w.grad is None


def test_jaqs_generator_finds_the_accelerator_and_carries_its_state() -> None:
    engine = small_engine(hardware="generator")
    images, labels = batch()
    record = engine.arch_step(images, labels)  # architecture step 0: a generator search first
    assert record["hw_search"]["generator_samples"] == 2 * 4  # generator_steps × samples per step
    assert engine.refreshes == engine.hw_searches == 1
    assert engine.accelerator == engine.design.accelerator
    assert AcceleratorConfig.from_json(record["hw_search"]["accelerator"]) == engine.accelerator
    state = engine.state_dict()
    assert state["refreshes"] == 1 and state["generator"].keys() == engine.generator.state_dict().keys()
