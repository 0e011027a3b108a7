"""HQNAS (``--method hqnas``): superkernel and bit-sharing exactness, the latency term, derivation, run directory,
resume, lifelong search and option errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import attrs
import pytest
import torch
from jaqc.ir import load_graph, verify

from jaqc.core import JaqcError
from jaqc.data import DataConfig, load_splits
from jaqc.hw.generator.objective import mapped_totals
from jaqc.nn.candidates import build_candidate
from jaqc.nn.config import FBNET_CANDIDATES, FixedBits, supernet_preset
from jaqc.nn.quantizers import quantize_weight
from jaqc.search.hqnas import HqnasRun
from jaqc.search.hqnas.latency import LatencyTable
from jaqc.search.hqnas.run import (
    check_options,
    default_threshold_lr,
    hardware_ratio,
    hardware_term,
    recalibrate,
)
from jaqc.search.hqnas.superkernel import (
    HQNAS_OPS,
    Gate,
    HqnasBlock,
    HqnasSupernet,
    copy_block,
    derived_subnet,
    ladder_select,
)
from jaqc.search.presets import search_preset
from jaqc.search.rundir import RunDir, without_time
from jaqc.search.space_costs import SpaceCosts

OFF, ON = 100.0, -100.0  # thresholds far above / below every norm: the indicator is off / on, the sigmoid saturated


def small_preset(**overrides):  # type: ignore[no-untyped-def]
    """tiny on native 8x8 digits, batch 128: 10 steps per epoch, 2 epochs."""
    preset = search_preset("tiny", epochs=2, seed=3, **overrides)
    return attrs.evolve(
        preset,
        supernet=supernet_preset("tiny", input_size=8),
        data=DataConfig(name="digits", resolution=8, channels=1),
        batch_size=128,
        checkpoint_every=4,
    )


def _set_path(block: HqnasBlock, op: str, w_level: int, a_level: int) -> None:
    """Thresholds that select ``op`` and the bit levels (0: 2 bits, 1: 4, 2: 8) exactly."""
    with torch.no_grad():
        if block.t_keep is not None:
            block.t_keep.fill_(OFF if op == "skip" else ON)
        block.t_kernel.fill_(ON if op.startswith("k5") else OFF)
        block.t_expand.fill_(ON if op.endswith("e6") else OFF)
        block.t_wbits.copy_(torch.tensor([ON if k < w_level else OFF for k in range(2)]))
        block.t_abits.copy_(torch.tensor([ON if k < a_level else OFF for k in range(2)]))


# --- superkernel and bit-sharing ----------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1])  # a block that may skip (8->8, stride 1) and one that may not (stride 2)
@pytest.mark.parametrize(("op", "w_level", "a_level"), [("k3_e3", 2, 2), ("k3_e3", 1, 0), ("k5_e6", 0, 1)])
def test_superkernel_path_equals_plain_block_exactly(index: int, op: str, w_level: int, a_level: int) -> None:
    config = supernet_preset("tiny", input_size=8)
    cin, cout, stride = config.block_specs()[index]
    torch.manual_seed(index)
    block = HqnasBlock(index, cin, cout, stride, config, temperature=0.25)
    _set_path(block, op, w_level, a_level)
    bits = (config.quant.weight_bits[w_level], config.quant.activation_bits[a_level])
    plain = build_candidate(op, cin, cout, stride, FixedBits(*bits))
    copy_block(plain, block, op, a_level)
    assert block.decide().op == op
    x = torch.randn(16, cin, 8, 8)
    assert torch.equal(block(x), plain(x))  # training mode: batch statistics, batch ranges
    hidden = plain.hidden_channels
    assert torch.equal(block.bn2.running_var[:hidden], plain.bn2.running_var)
    assert torch.equal(block.act_dw.running_max, plain.dw.act_quant.running_max)
    block.eval(), plain.eval()
    assert torch.equal(block(x), plain(x))  # eval mode: running statistics
    # the plain block holds the superkernel's centre / first channels
    assert torch.equal(
        plain.dw.weight, block.dw.weight[:hidden, :, 1:4, 1:4] if op[1] == "3" else block.dw.weight[:hidden]
    )
    assert torch.equal(plain.project.weight, block.project.weight[:, :hidden])


def test_skip_returns_the_input_and_only_where_legal() -> None:
    config = supernet_preset("tiny", input_size=8)
    net = HqnasSupernet(config)
    legal = [b.skippable for b in net.search_blocks()]
    assert legal == [True, False, True, False, False]  # 8->8 s1, 8->16 s2, 16->16 s1, 16->24 s2, 24->32 s1
    block = net.search_blocks()[0]
    _set_path(block, "skip", 2, 2)
    x = torch.randn(4, 8, 8, 8)
    assert block.decide().op == "skip"
    assert torch.equal(block(x), x)
    for b in net.search_blocks():
        assert (b.t_keep is None) == (not b.skippable)
        if not b.skippable:
            _set_path(b, "skip", 2, 2)  # no keep threshold: the block stays an inverted residual
            assert b.decide().op == "k3_e3"


@pytest.mark.parametrize(("w_level", "bits"), [(2, 8), (1, 4), (0, 2)])
def test_bit_sharing_selects_exactly_the_quantized_weight(w_level: int, bits: int) -> None:
    config = supernet_preset("tiny", input_size=8)
    block = HqnasBlock(2, 16, 16, 1, config, temperature=0.25)
    _set_path(block, "k5_e6", w_level, 2)
    weights = block.decide().weights
    assert torch.equal(weights["expand"], quantize_weight(block.expand.weight, bits))
    assert torch.equal(weights["dw"], quantize_weight(block.dw.weight, bits))
    assert torch.equal(weights["project"], quantize_weight(block.project.weight, bits))


def test_bit_ladder_is_nested() -> None:
    """8 bits are reached only through 4 bits: the second rung alone selects nothing."""
    config = supernet_preset("tiny", input_size=8)
    block = HqnasBlock(2, 16, 16, 1, config, temperature=0.25)
    with torch.no_grad():
        block.t_wbits.copy_(torch.tensor([OFF, ON]))
    d = block.decide()
    assert d.weight_level == 0
    assert torch.equal(d.weights["expand"], quantize_weight(block.expand.weight, 2))


def test_ladder_select_has_the_nested_residual_gradient() -> None:
    torch.manual_seed(0)
    candidates = [torch.randn(5) for _ in range(3)]
    upstream = torch.randn(5)
    for on in [(True, True), (True, False), (False, True), (False, False)]:
        masks = [torch.tensor(float(v), requires_grad=True) for v in on]
        gates = [Gate(mask=m, soft=m.detach(), on=v) for m, v in zip(masks, on, strict=True)]
        value = ladder_select(candidates, gates)
        # the nested form with the same (hard) masks
        c0, c1, c2 = candidates
        reference_masks = [torch.tensor(float(v), requires_grad=True) for v in on]
        m1, m2 = reference_masks
        nested = c0 + m1 * ((c1 - c0) + m2 * (c2 - c1))
        level = 0 if not on[0] else (1 if not on[1] else 2)
        assert torch.equal(value, candidates[level])  # exact forward
        assert torch.allclose(nested, value)
        (value * upstream).sum().backward()
        (nested * upstream).sum().backward()
        for mine, reference in zip(masks, reference_masks, strict=True):
            assert reference.grad is not None
            assert torch.allclose(mine.grad if mine.grad is not None else torch.zeros(()), reference.grad)


def test_gradients_reach_every_threshold() -> None:
    config = supernet_preset("tiny")  # 16x16: the last block sees 4x4, where the 5x5 ring still reads pixels
    torch.manual_seed(1)
    net = HqnasSupernet(config)
    x = torch.randn(8, 1, 16, 16)
    net(x)  # initialises the activation statistics
    with torch.no_grad():  # thresholds near the norms (≈ 1): unsaturated sigmoids, some paths on, some off
        for i, block in enumerate(net.search_blocks()):
            block.t_kernel.fill_(0.9 if i % 2 else 1.1)
            block.t_expand.fill_(1.1 if i % 2 else 0.9)
            block.t_wbits.fill_(0.9)
            block.t_abits.fill_(0.9)
    logits, _ = net.forward_with_decisions(x)
    (logits * torch.randn_like(logits)).sum().backward()
    for block in net.search_blocks():
        for t in block.threshold_parameters():
            assert t.grad is not None and bool((t.grad != 0).all()), (block.index, t)
    net.zero_grad()
    table = LatencyTable(config, _accelerator())
    latency, _ = table.expected(net.decide())
    latency.backward()
    kernel = net.search_blocks()[0].t_kernel.grad
    assert kernel is not None and float(kernel) < 0  # raising a threshold drops a part: lower latency


# --- latency term and derivation ------------------------------------------------------------------------------


def _accelerator():  # type: ignore[no-untyped-def]
    from jaqc.hw.accelerators import load_accelerator

    return load_accelerator("jaq-table2")


def test_latency_term_matches_the_cost_table_at_the_derived_choices() -> None:
    config = supernet_preset("tiny", input_size=8)
    net = HqnasSupernet(config)
    paths = [("skip", 2, 2), ("k5_e3", 1, 2), ("k3_e6", 0, 1), ("k5_e6", 2, 0), ("k3_e3", 1, 1)]
    for block, path in zip(net.search_blocks(), paths, strict=True):
        _set_path(block, *path)
    table = LatencyTable(config, _accelerator())
    arch = net.derived()
    assert arch.ops == ("skip", "k5_e3", "k3_e6", "k5_e6", "k3_e3")
    assert arch.bits == ((8, 8), (4, 8), (2, 4), (8, 2), (4, 4))
    latency, energy = (value.detach() for value in table.expected(net.decide()))
    exact = mapped_totals(SpaceCosts.from_config(config).derived_problems(arch.ops, arch.bits), _accelerator())
    assert float(latency) == pytest.approx(exact.latency_s, rel=1e-12)
    assert float(energy) == pytest.approx(exact.energy_nJ, rel=1e-12)
    assert table.at(arch.ops, arch.bits) == pytest.approx((exact.latency_s, exact.energy_nJ), rel=1e-12)
    full = mapped_totals(SpaceCosts.from_config(config).derived_problems(["k5_e6"] * 5, [(8, 8)] * 5), _accelerator())
    assert table.reference_latency_s == pytest.approx(full.latency_s, rel=1e-12)
    assert table.reference_energy_nj == pytest.approx(full.energy_nJ, rel=1e-12)
    # the objective option: log of the latency, energy or EDAP (energy x latency) ratio to the largest path's
    lat, en = latency / full.latency_s, energy / full.energy_nJ
    for objective, ratio in (("latency", lat), ("energy", en), ("edap", lat * en)):
        term = hardware_term(latency, energy, table, objective)
        assert float(term) == pytest.approx(math.log(float(ratio)), rel=1e-9)
        assert hardware_ratio(float(latency), float(energy), table, objective) == pytest.approx(float(ratio), rel=1e-12)


def test_derived_subnet_has_fbnet_ops_the_weights_and_the_same_output() -> None:
    config = supernet_preset("tiny", input_size=8)
    torch.manual_seed(2)
    net = HqnasSupernet(config)
    x = torch.randn(16, 1, 8, 8)
    net(x)  # training-mode statistics
    generator = torch.Generator().manual_seed(5)
    for block in net.search_blocks():
        ops = [op for op in HQNAS_OPS if op != "skip" or block.skippable]
        op = ops[int(torch.randint(len(ops), (1,), generator=generator))]
        w, a = (int(v) for v in torch.randint(3, (2,), generator=generator))
        _set_path(block, op, w, a)
    subnet, arch = derived_subnet(net)
    assert set(arch.ops) <= set(FBNET_CANDIDATES) and set(arch.ops) <= set(HQNAS_OPS)
    assert tuple(subnet.ops) == arch.ops and tuple(subnet.bits) == arch.bits
    assert torch.equal(subnet.stem[0].weight, net.stem[0].weight)
    assert torch.equal(subnet.classifier.weight, net.classifier.weight)
    net.eval(), subnet.eval()
    with torch.no_grad():
        assert torch.equal(subnet(x), net(x))  # the derived subnet is the searched model, bit for bit


# --- options -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"budget": 0.5}, "method hqnas: unknown option 'budget'; it takes accelerator, lifelong, lifelong_epochs, "),
        ({"temperature": 0}, "option temperature must be a number > 0, got 0"),
        ({"lifelong_epochs": 2}, "option lifelong_epochs needs option lifelong"),
        ({"lifelong": "x", "lifelong_epochs": 0}, "option lifelong_epochs must be an integer >= 1, got 0"),
        ({"accelerator": 3}, "option accelerator must be a preset name or a file, got 3"),
        ({"objective": "area"}, "option objective must be one of latency, energy, edap, got 'area'"),
        ({"threshold_lr": 0}, "option threshold_lr must be a number > 0, got 0"),
        ({"threshold_lr": "fast"}, "option threshold_lr must be a number > 0, got 'fast'"),
    ],
)
def test_bad_options_are_named(options: dict, message: str) -> None:
    with pytest.raises(JaqcError, match=message.replace("(", r"\(")):
        check_options(options)


def test_bad_accelerator_and_lifelong_are_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(JaqcError, match="method hqnas: option accelerator: ACCEL 'nope'"):
        HqnasRun(small_preset(), tmp_path / "a", options={"accelerator": "nope"})
    with pytest.raises(JaqcError, match=r"method hqnas: option lifelong: .*no such run directory"):
        HqnasRun(small_preset(), tmp_path / "b", options={"lifelong": str(tmp_path / "missing")})
    other = RunDir.create(tmp_path / "jaq")
    other.write_config({"format": "jaqc.search-run", "method": "jaq", "recipe": {}})
    with pytest.raises(JaqcError, match="is a jaq run, not an hqnas run"):
        HqnasRun(small_preset(), tmp_path / "c", options={"lifelong": str(tmp_path / "jaq")})
    assert not any((tmp_path / name).exists() for name in "abc")
    assert check_options(None) == {
        "accelerator": "jaq-table2", "lifelong": None, "lifelong_epochs": None, "temperature": 0.25,
        "objective": "latency", "threshold_lr": None,
    }  # fmt: skip


# --- run directory, resume, lifelong --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    run_dir = tmp_path_factory.mktemp("hqnas") / "straight"
    outcome = HqnasRun(small_preset(), run_dir).run(progress=False)
    assert outcome is not None
    return outcome


def _outputs(run_dir: Path) -> dict:
    names = ("architecture.json", "accelerator.json", "schedule.json")
    return {name: json.loads((run_dir / name).read_text()) for name in names}


def _final_state(run_dir: Path) -> dict:
    return RunDir.open(run_dir).load_checkpoint().state["supernet"]


def test_run_directory_outputs(straight_run) -> None:  # type: ignore[no-untyped-def]
    run_dir, summary = straight_run.run_dir, straight_run.summary
    config = RunDir.open(run_dir).read_config()
    assert config["method"] == "hqnas" and config["format"] == "jaqc.search-run" and config["options"] == {}
    assert config["recipe"] == {"preset": "tiny", "data_root": None, "overrides": {}}
    for key in ("method", "preset", "architecture", "accelerator", "latency_ms", "energy_mJ", "area_mm2"):
        assert key in summary
    assert summary["method"] == "hqnas" and summary["accelerator"]["name"] == "jaq-table2"
    assert summary["edap_mJ_ms_mm2"] == pytest.approx(
        summary["latency_ms"] * summary["energy_mJ"] * summary["area_mm2"], rel=1e-9
    )
    assert summary["latency_ms"] == pytest.approx(summary["table_latency_ms"], rel=1e-9)  # schedule = table
    assert 0.0 <= summary["val_acc"] <= 1.0 and summary["search_seconds"] > 0
    assert json.loads((run_dir / "summary.json").read_text())["architecture"] == summary["architecture"]
    architecture = json.loads((run_dir / "architecture.json").read_text())
    assert architecture == summary["architecture"] and set(architecture["ops"]) <= set(HQNAS_OPS)
    subnet = load_graph(run_dir / "subnet.json")
    verify(subnet)
    assert subnet.accelerator is not None and all(layer.weights for layer in subnet.layers_of(*_weighted()))
    assert (run_dir / "subnet.jaqc").exists() and (run_dir / "schedule.json").exists()
    for plot in ("training.png", "hardware.png", "architecture.png"):
        assert (run_dir / "plots" / plot).read_bytes().startswith(b"\x89PNG")
    records = RunDir.open(run_dir).read_metrics()
    assert [r["step"] for r in records if "w_loss" in r] == list(range(1, 21))
    assert [r["epoch"] for r in records if "val_acc" in r] == [0, 1]


def test_threshold_step_lets_a_short_run_leave_the_largest_path(straight_run) -> None:  # type: ignore[no-untyped-def]
    # a threshold starts at 0 against a norm of about 1 and Adam moves it about lr per step (cosine: half the sum)
    assert default_threshold_lr(0.01, 160) == pytest.approx(0.025)  # digits32: 2 epochs of 80 steps
    assert default_threshold_lr(0.01, 90 * 3125) == 0.01  # cifar10's 90 epochs keep arch_lr
    summary = straight_run.summary
    assert summary["threshold_lr"] == pytest.approx(0.2)  # 20 steps
    largest = {"ops": ["k5_e6"] * 5, "bits": [[8, 8]] * 5}
    assert summary["architecture"] != largest  # at arch_lr (0.01) this run derived the largest path
    assert summary["latency_ms"] < summary["reference_latency_ms"]


def _weighted():  # type: ignore[no-untyped-def]
    from jaqc.ir import LayerKind

    return (LayerKind.CONV2D, LayerKind.LINEAR)


def test_subnet_json_starts_retraining_from_the_searched_weights(straight_run) -> None:  # type: ignore[no-untyped-def]
    from jaqc.nn.subnet import build_subnet

    run_dir, preset = straight_run.run_dir, small_preset()
    net = HqnasSupernet(preset.supernet)
    net.load_state_dict(_final_state(run_dir))
    searched, _ = derived_subnet(net)
    recalibrate(searched, load_splits(preset.data).train, preset.batch_size, preset.settings.seed + 1)
    rebuilt = build_subnet(load_graph(run_dir / "subnet.json"))
    x = torch.randn(8, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), searched.eval()(x), atol=1e-5)


def test_resumed_run_equals_uninterrupted(straight_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    preset = small_preset()
    assert HqnasRun(preset, tmp_path / "resumed").run(progress=False, stop_after_steps=7) is None  # "killed"
    assert not (tmp_path / "resumed" / "summary.json").exists()
    resumed = HqnasRun(preset, tmp_path / "resumed", resume=True)
    assert resumed.position.step == 4  # the latest checkpoint
    outcome = resumed.run(progress=False)
    assert outcome is not None
    assert _outputs(tmp_path / "resumed") == _outputs(straight_run.run_dir)
    metrics = [without_time(RunDir.open(d).read_metrics()) for d in (straight_run.run_dir, tmp_path / "resumed")]
    assert metrics[0] == metrics[1]
    final = [_final_state(d) for d in (straight_run.run_dir, tmp_path / "resumed")]
    assert final[0].keys() == final[1].keys() and all(torch.equal(final[0][k], final[1][k]) for k in final[0])
    assert outcome.summary["val_acc"] == straight_run.summary["val_acc"]


def test_lifelong_starts_from_the_previous_run(straight_run, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    previous = straight_run.run_dir
    run = HqnasRun(small_preset(lam=2.0), tmp_path / "lifelong", options={"lifelong": str(previous)})
    assert run.epochs == 1  # max(1, 2 // 4)
    start, before = run.net.state_dict(), _final_state(previous)
    assert start.keys() == before.keys() and all(torch.equal(start[k], before[k]) for k in start)
    outcome = run.run(progress=False)
    assert outcome is not None
    summary = outcome.summary
    assert summary["lifelong_from"] == str(previous) and summary["search_epochs"] == 1
    saved = straight_run.summary["search_seconds"] - summary["search_seconds"]
    assert summary["time_saved_seconds"] == saved
    assert json.loads((tmp_path / "lifelong" / "summary.json").read_text())["time_saved_seconds"] == saved
    assert "s saved" in capsys.readouterr().out
    config = RunDir.open(tmp_path / "lifelong").read_config()
    assert config["options"] == {"lifelong": str(previous)}
    with pytest.raises(JaqcError, match="has not finished"):
        unfinished = tmp_path / "unfinished"
        HqnasRun(small_preset(), unfinished).run(progress=False, stop_after_steps=1)
        HqnasRun(small_preset(), tmp_path / "again", options={"lifelong": str(unfinished)})
