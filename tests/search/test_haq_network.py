"""HAQ on a real network (``--method haq``): the per-layer cost cache against BatchTile, budget enforcement, state
features of a real subnet, the reward, first/last layers at 8 bits, the run directory, resuming, option errors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch
from jaqc.ir import LayerGraph, LayerKind, load_graph, save_graph, verify
from jaqc.passes import PassContext, PassManager, make_pass
from torch import nn

from jaqc.core import JaqcError
from jaqc.data import DataConfig, load_splits, split_for_search
from jaqc.export.schedule import build_schedule
from jaqc.hw.accelerators import load_accelerator
from jaqc.nn.config import supernet_preset
from jaqc.nn.search_conv import SearchConv2d
from jaqc.nn.tracing import trace_model
from jaqc.search.haq import (
    DdpgConfig,
    HaqConfig,
    HaqSearch,
    ResourceBudget,
    StateEncoder,
    enforce_budget,
    make_synthetic_env,
    resolve_budget,
    searched_layers,
)
from jaqc.search.haq.network import (
    BIT_PAIRS,
    FinetuneSettings,
    HaqNetworkEnv,
    LayerCostTable,
    default_network,
)
from jaqc.search.haq.run import HaqRun, choose_budget, resolve_settings
from jaqc.search.presets import search_preset
from jaqc.search.rundir import RunDir, without_time

DATA = DataConfig(name="digits", resolution=8, channels=1)
#: A small FBNet supernet on 8x8 digits: stem, 2 blocks, head, classifier (9 conv/linear layers with k3_e1).
SMALL_SUPERNET = {
    "input_size": 8,
    "stage_layers": (1, 1),
    "stage_channels": (32, 64),
    "stage_strides": (1, 2),
    "head_channels": 64,
    "stem_channels": 16,
}


class PlainCnn(nn.Module):
    """conv 1→16 → conv 16→32 s2 → conv 32→32 s2 → pool → linear 32→10 (bias-free convs with batch norm)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for index, cout in enumerate((16, 32, 32)):
            layers += [SearchConv2d(cin, cout, 3, 2 if index else 1), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def small_preset():  # type: ignore[no-untyped-def]
    preset = search_preset("tiny", seed=1)
    return attrs.evolve(preset, supernet=supernet_preset("tiny", **SMALL_SUPERNET), data=DATA, batch_size=32)


@pytest.fixture(scope="module")
def plain_graph() -> LayerGraph:
    torch.manual_seed(0)
    return trace_model(PlainCnn().eval(), (1, 1, 8, 8), name="plain")


@pytest.fixture(scope="module")
def plain_file(tmp_path_factory: pytest.TempPathFactory, plain_graph: LayerGraph) -> Path:
    return save_graph(plain_graph, tmp_path_factory.mktemp("net") / "plain.json", weights=True)


@pytest.fixture(scope="module")
def fbnet_graph() -> LayerGraph:
    torch.manual_seed(0)
    model = default_network(supernet_preset("tiny", **SMALL_SUPERNET), "k3_e1")
    return trace_model(model.eval(), model.example_input_shape)


def _splits():  # type: ignore[no-untyped-def]
    return split_for_search(load_splits(DATA).train, 0.2, 1)


def _env(graph: LayerGraph, steps: int = 1) -> HaqNetworkEnv:
    finetune_set, reward_set = _splits()
    settings = FinetuneSettings(steps=steps, lr=0.01, batch_size=32, seed=1)
    return HaqNetworkEnv(graph, finetune_set, reward_set, load_accelerator("jaq-table2"), settings)


def _random_bits(count: int, rng: np.random.Generator) -> tuple[tuple[int, int], ...]:
    pairs = [BIT_PAIRS[i] for i in rng.integers(0, len(BIT_PAIRS), count)]
    return tuple((8, 8) if i in (0, count - 1) else pair for i, pair in enumerate(pairs))


# --- the cost cache ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["plain_graph", "fbnet_graph"])
def test_cost_cache_equals_batchtile_of_the_whole_network(which: str, request: pytest.FixtureRequest) -> None:
    graph = request.getfixturevalue(which)
    accelerator = load_accelerator("jaq-table2")
    table = LayerCostTable(graph, accelerator)
    count = len(table)
    assert table.layer_names == tuple(x.name for x in graph.layers_of(LayerKind.CONV2D, LayerKind.LINEAR))
    rng = np.random.default_rng(0)
    configs = [tuple((8, 8) for _ in range(count)), tuple((2, 2) for _ in range(count))]
    configs += [_random_bits(count, rng) for _ in range(3)]
    env = _env(graph)
    for bits in configs:
        mapped = env.quantized_graph(bits)
        mapped.accelerator = accelerator
        mapped = PassManager([make_pass("batchtile", {"space": "jaq"})]).run(mapped, PassContext()).graph
        direct = build_schedule(mapped)["totals"]
        cached = table.totals(bits)
        assert cached.cycles == direct["cycles"]
        assert cached.latency_ms == direct["latency_ms"]
        assert cached.energy_mJ == direct["energy_mJ"]
        assert cached.area_mm2 == direct["area_mm2"]
        assert cached.edap_mJ_ms_mm2 == direct["edap_mJ_ms_mm2"]
        assert env.cost(bits, "latency") == direct["latency_ms"]
        assert env.cost(bits, "energy") == direct["energy_mJ"]
        assert env.cost(bits, "edap") == direct["edap_mJ_ms_mm2"]
        outs = table.out_bits(bits)  # each layer's consumers' bits under this configuration
        for layer, (w, a) in zip(mapped.layers_of(LayerKind.CONV2D, LayerKind.LINEAR), bits, strict=True):
            i = table.layer_names.index(layer.name)
            key = (w, a, outs[i])  # the table's entry is the batchtile pass's cost of that layer, exactly
            assert (layer.cost.total_cycles, layer.cost.energy_nJ) == (table.cycles[i][key], table.energy_nJ[i][key])


def test_cost_table_rejects_bad_bits(plain_graph: LayerGraph) -> None:
    table = LayerCostTable(plain_graph, load_accelerator("jaq-table2"))
    with pytest.raises(JaqcError, match="expected 4 \\(w, a\\) pairs of 2, 4 or 8 bits"):
        table.cost(((8, 8), (3, 8), (8, 8), (8, 8)), "latency")
    with pytest.raises(JaqcError, match="expected 4"):
        table.cost(((8, 8),), "latency")


# --- budget, state, reward on the real environment ---------------------------------------------------------------


@pytest.mark.parametrize(("kind", "fraction"), [("latency", 0.85), ("energy", 0.8), ("edap", 0.65)])
def test_budget_enforcement_on_the_real_env_ends_within_budget(
    plain_graph: LayerGraph, kind: str, fraction: float
) -> None:
    env = _env(plain_graph)
    count = len(env.layers)
    searched = searched_layers(count, True)
    bounds = resolve_budget(env.cost, count, searched, ResourceBudget(kind, fraction))
    assert bounds.minimum_fraction < fraction < 1.0
    rng = np.random.default_rng(1)
    lowered = 0
    for _ in range(40):
        proposed = _random_bits(count, rng)
        bits, cost = enforce_budget(proposed, lambda b: env.cost(b, bounds.kind), bounds, searched)
        assert bounds.within(cost) and cost == env.cost(bits, bounds.kind)
        assert bits[0] == bits[-1] == (8, 8)
        assert all(w <= pw and a <= pa for (w, a), (pw, pa) in zip(bits, proposed, strict=True))
        lowered += bits != proposed
    assert lowered > 0  # the budget binds for some proposals
    with pytest.raises(JaqcError, match=f"infeasible {kind} budget: 0.001 of the 8-bit design"):
        resolve_budget(env.cost, count, searched, ResourceBudget(kind, 0.001))


def test_state_features_of_a_real_subnet(fbnet_graph: LayerGraph) -> None:
    env = _env(fbnet_graph)
    names = [
        "stem.0", "blocks.0.expand", "blocks.0.dw", "blocks.0.project",
        "blocks.1.expand", "blocks.1.dw", "blocks.1.project", "head.0", "classifier",
    ]  # fmt: skip
    assert list(env.layer_names) == names
    rows = [
        (info.index, info.is_depthwise, info.in_channels, info.out_channels, info.stride, info.kernel,
         info.weight_count, info.in_fmap_size)
        for info in env.layers
    ]  # fmt: skip
    assert rows == [
        (0, False, 1, 16, 1, 3, 144, 64),
        (1, False, 16, 16, 1, 1, 256, 64),
        (2, True, 16, 16, 1, 3, 144, 64),
        (3, False, 16, 32, 1, 1, 512, 64),
        (4, False, 32, 32, 1, 1, 1024, 64),
        (5, True, 32, 32, 2, 3, 288, 64),
        (6, False, 32, 64, 1, 1, 2048, 16),
        (7, False, 64, 64, 1, 1, 4096, 16),
        (8, False, 64, 10, 1, 1, 640, 1),
    ]
    encoder = StateEncoder(env.layers)
    state = encoder.state(5, previous_bits=4, is_weight=True)
    expected = [5 / 8, 1.0, (32 - 1) / 63, (32 - 10) / 54, 1.0, 1.0, (288 - 144) / (4096 - 144), 1.0, 1 / 3, 1.0]
    assert state.dtype == np.float32
    assert state.tolist() == pytest.approx(expected, abs=1e-7)
    assert encoder.state(8, 8, False)[:8].tolist() == pytest.approx([1, 0, 1, 0, 0, 0, 496 / 3952, 0], abs=1e-7)


def test_evaluate_is_memoised_and_the_reference_is_8_bit(plain_graph: LayerGraph) -> None:
    env = _env(plain_graph, steps=2)
    reference = env.reference_accuracy
    assert env.evaluations == 1 and 0.0 <= reference <= 100.0
    assert env.evaluate(env.reference_bits) == reference and env.evaluations == 1
    bits = ((8, 8), (2, 2), (4, 2), (8, 8))
    first = env.evaluate(bits)
    assert env.evaluate(bits) == first and env.evaluations == 2
    fresh = _env(plain_graph, steps=2)
    assert fresh.evaluate(bits) == first  # the fine-tune is deterministic
    model = env.build(bits)
    convs = [m for m in model.modules() if isinstance(m, SearchConv2d)]
    assert [(m.weight_bits, m.activation_bits) for m in convs] == [((8,), (8,)), ((2,), (2,)), ((4,), (2,))]
    restored = _env(plain_graph, steps=2)
    restored.load_accuracy_cache(env.accuracy_cache())
    assert restored.evaluate(bits) == first and restored.evaluations == 0


def test_search_state_round_trip_continues_exactly() -> None:
    """HaqSearch saved after some episodes and restored into a new search ends as an uninterrupted one."""
    env = make_synthetic_env(seed=0)
    budget = ResourceBudget("latency", 0.5)
    config = HaqConfig(episodes=12, warmup_episodes=4, seed=3, ddpg=DdpgConfig(hidden=(16, 16), batch_size=8))
    straight = HaqSearch(env, budget, config).run()
    first = HaqSearch(env, budget, config)
    for _ in range(6):
        first.run_episode()
    state = first.state_dict()
    second = HaqSearch(env, budget, config)
    second.load_state_dict(state)
    assert second.run().to_json() == straight.to_json()


# --- run directories ---------------------------------------------------------------------------------------------

PLAIN_OPTIONS = {"episodes": 5, "warmup_episodes": 2, "finetune_steps": 2, "final_finetune_steps": 3, "budget": 0.8}


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory, plain_file: Path):  # type: ignore[no-untyped-def]
    run_dir = tmp_path_factory.mktemp("haq") / "straight"
    outcome = HaqRun(small_preset(), run_dir, options={**PLAIN_OPTIONS, "network": str(plain_file)}).run(progress=False)
    assert outcome is not None
    return outcome


def _outputs(run_dir: Path) -> dict:
    files = ("architecture.json", "accelerator.json", "schedule.json", "subnet.json", "network.json")
    out = {name: (run_dir / name).read_text() for name in files}
    out["metrics.jsonl"] = without_time(RunDir.open(run_dir).read_metrics())
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.pop("search_seconds")
    summary["network"].pop("source")
    out["summary.json"] = summary
    return out


def test_run_directory_layout_and_summary(straight_run) -> None:  # type: ignore[no-untyped-def]
    run_dir, summary = straight_run.run_dir, straight_run.summary
    for name in ("config.json", "network.json", "subnet.json", "subnet.jaqc", "schedule.json", "accelerator.json"):
        assert (run_dir / name).is_file()
    for plot in ("search.png", "architecture.png"):
        assert (run_dir / "plots" / plot).read_bytes().startswith(b"\x89PNG")
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config["method"] == "haq" and config["options"]["budget"] == 0.8 and config["recipe"]["preset"] == "tiny"
    architecture = json.loads((run_dir / "architecture.json").read_text())
    assert architecture["ops"] == ["features.0", "features.3", "features.6", "fc"]
    assert summary["architecture"] == architecture and summary["method"] == "haq"
    assert architecture["bits"][0] == architecture["bits"][-1] == [8, 8]
    assert summary["episodes"] == 5 and summary["budget"]["fraction"] == 0.8 and summary["budget"]["kind"] == "latency"
    assert summary["budget"]["cost_fraction"] <= 0.8 * (1 + 1e-9)
    schedule = json.loads((run_dir / "schedule.json").read_text())
    assert summary["latency_ms"] == schedule["totals"]["latency_ms"] == pytest.approx(summary["budget"]["cost"])
    assert summary["edap_mJ_ms_mm2"] == schedule["totals"]["edap_mJ_ms_mm2"]
    assert [[x["bits"]["w"], x["bits"]["a"]] for x in schedule["layers"]] == architecture["bits"]
    assert 0.0 <= summary["val_acc"] <= 1.0 and summary["search_seconds"] > 0
    subnet = load_graph(run_dir / "subnet.json")
    verify(subnet)
    quantized = subnet.layers_of(LayerKind.CONV2D, LayerKind.LINEAR)
    assert [[x.quant.w_bits, x.quant.a_bits] for x in quantized] == architecture["bits"]
    assert all(x.mapping is not None and "weight" in x.weights for x in quantized)


def test_reward_formula_and_first_last_layers_at_8_bits(straight_run) -> None:  # type: ignore[no-untyped-def]
    records = [json.loads(line) for line in (straight_run.run_dir / "metrics.jsonl").read_text().splitlines()]
    reference = next(r for r in records if r["phase"] == "reference")["reference_acc"]
    episodes = [r for r in records if r["phase"] == "episode"]
    assert [r["step"] for r in episodes] == [1, 2, 3, 4, 5]
    assert [r["sigma"] is None for r in episodes] == [True, True, False, False, False]
    for record in episodes:
        assert record["reward"] == 0.1 * (record["accuracy"] - reference)
        assert record["bits"][0] == record["bits"][-1] == [8, 8]
        assert record["proposed_bits"][0] == record["proposed_bits"][-1] == [8, 8]
        assert record["cost_fraction"] <= 0.8 * (1 + 1e-9)
    best = max(episodes, key=lambda r: (r["reward"], -r["episode"]))
    summary = straight_run.summary
    assert summary["best_episode"] == best["episode"] and summary["architecture"]["bits"] == best["bits"]
    # every accuracy of a summary is a fraction, as val_acc (metrics keep HAQ's percent, which the reward uses)
    assert summary["reference_acc"] == reference / 100.0 and 0.0 <= summary["reward_acc"] <= 1.0
    assert summary["best_episode_acc"] == best["accuracy"] / 100.0 and 0.0 <= summary["val_acc"] <= 1.0
    assert records[-1]["phase"] == "final" and records[-1]["step"] == 6


def test_resumed_run_equals_uninterrupted(tmp_path: Path, straight_run, plain_file: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    options = {**PLAIN_OPTIONS, "network": str(plain_file)}
    run_dir = tmp_path / "resumed"
    assert HaqRun(small_preset(), run_dir, options=options).run(progress=False, stop_after_episodes=2) is None
    assert not (run_dir / "summary.json").exists()
    with open(run_dir / "metrics.jsonl", "a") as handle:  # a record the killed run wrote after its last checkpoint
        handle.write(json.dumps({"step": 3, "phase": "episode"}) + "\n")
    with pytest.raises(JaqcError, match="resume with the run's own options"):
        HaqRun(small_preset(), run_dir, resume=True, options={**options, "budget": 0.9})
    metrics = (run_dir / "metrics.jsonl").read_text()
    with monkeypatch.context() as patch:  # a jaqc whose default resolves the same options to other settings
        patch.setattr("jaqc.search.haq.run.DEFAULT_EPISODE_CLIPPING", "minmax")
        with pytest.raises(JaqcError, match=r"cannot resume: .*\(episode_clipping 'mse' -> 'minmax'\); resume with"):
            HaqRun(small_preset(), run_dir, resume=True).run(progress=False)
    assert (run_dir / "metrics.jsonl").read_text() == metrics  # refused before touching the run
    outcome = HaqRun(small_preset(), run_dir, resume=True).run(progress=False)
    assert outcome is not None
    assert _outputs(run_dir) == _outputs(straight_run.run_dir)


def test_default_network_is_pretrained_and_logged(tmp_path: Path) -> None:
    options = {"base_op": "k3_e1", "pretrain_epochs": 1, "episodes": 2, "warmup_episodes": 1, "finetune_steps": 1}
    outcome = HaqRun(small_preset(), tmp_path / "run", options={**options, "final_finetune_steps": 1}).run(
        progress=False
    )
    assert outcome is not None
    summary = outcome.summary
    assert summary["network"]["source"] == "default" and summary["network"]["ops"] == ["k3_e1", "k3_e1"]
    assert len(summary["architecture"]["ops"]) == 9
    budget = summary["budget"]  # under the deployment model 2-bit layers are much faster: 0.5 is feasible
    assert budget["requested"] is None and budget["minimum_fraction"] < 0.5
    assert budget["fraction"] == 0.5  # the default rule: 0.5 when feasible
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in records[:2]] == ["pretrain", "reference"] and records[0]["step"] == 0
    assert (tmp_path / "run" / "plots" / "pretrain.png").is_file()
    assert load_graph(tmp_path / "run" / "network.json").layers_of(LayerKind.CONV2D)[0].quant is None


def test_episodes_and_the_written_subnet_clip_with_mse(straight_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The episodes' fine-tunes and the final one calibrate their clipping (MSE factors), so the accuracy the search
    chose by is the written network's; ``jaqc retrain --clipping minmax`` retrains it with min/max ranges."""
    from jaqc.nn.quantizers import ActivationQuantizer
    from jaqc.nn.subnet import build_subnet, stored_clipping
    from jaqc.search.retrain import retrain_run

    config = RunDir.open(straight_run.run_dir).read_config()
    assert "episode_clipping" not in config["options"] and straight_run.summary["settings"]["episode_clipping"] == "mse"
    subnet = load_graph(straight_run.run_dir / "subnet.json")
    quantized = [layer for layer in subnet if layer.quant is not None and layer.quant.a_bits is not None]
    assert quantized and {stored_clipping(layer) for layer in quantized} == {"mse"}
    assert all(q.mse for q in build_subnet(subnet).modules() if isinstance(q, ActivationQuantizer))
    run = tmp_path / "run"
    shutil.copytree(straight_run.run_dir, run)
    summary = retrain_run(run, epochs=1, progress=False, clipping="minmax")
    assert summary["activation_clipping"] == "minmax"
    retrained = load_graph(run / "retrain" / "subnet.json")
    assert {stored_clipping(layer) for layer in retrained if layer.quant is not None} == {"minmax"}


def test_a_flat_reward_is_reported(straight_run) -> None:  # type: ignore[no-untyped-def]
    """Every episode at one accuracy (digits32's 2-bit configurations at chance before MSE clipping): the agent
    learned nothing; the summary says so and the episodes' spread is recorded."""
    from jaqc.search.haq.results import EpisodeRecord
    from jaqc.search.haq.run import reward_warnings

    records = RunDir.open(straight_run.run_dir).read_metrics()
    history = [EpisodeRecord.from_json(r) for r in records if r.get("phase") == "episode"]
    accuracies = [r.accuracy / 100 for r in history]
    spread = {"min": min(accuracies), "max": max(accuracies), "distinct": len(set(accuracies))}
    assert straight_run.summary["episode_accuracy"] == spread
    # this run's two-step fine-tunes leave every configuration of the plain CNN at chance: a flat reward itself
    assert spread["distinct"] == 1 and straight_run.summary["reward_warnings"] == reward_warnings(history)
    flat = [attrs.evolve(r, accuracy=9.86) for r in history]
    (warning,) = reward_warnings(flat)
    assert warning.startswith(f"flat reward: all {len(flat)} episodes scored 9.86 %, so the agent had nothing")
    assert straight_run.summary["reward_warnings"] == [warning.replace("9.86", f"{100 * accuracies[0]:.2f}")]
    assert warning.endswith("(try more finetune_steps or a looser budget)")  # the default clipping is MSE already
    (warning,) = reward_warnings(flat, "minmax")
    assert warning.endswith("(try episode_clipping 'mse', more finetune_steps or a looser budget)")
    assert reward_warnings(flat[:1]) == []  # one episode is no evidence of a flat reward
    assert reward_warnings([*flat[:-1], attrs.evolve(flat[-1], accuracy=9.87)]) == []


def test_finetune_clips_the_gradient_norm() -> None:
    """2-bit activations leave batch-norm channels with near-zero variance whose backward amplifies the gradient
    layer after layer until it overflows (digits32: NaN after three steps); the fine-tune clips it, as retraining
    does: with lr 1, no momentum history and no weight decay, one step moves the weights by the clipped norm."""
    from torch.utils.data import TensorDataset

    from jaqc.search.haq.network import finetune
    from jaqc.search.retrain import GRAD_CLIP_NORM

    model = nn.Linear(4, 3)
    data = TensorDataset(torch.full((8, 4), 1e4), torch.zeros(8, dtype=torch.long))
    before = [p.detach().clone() for p in model.parameters()]
    finetune(model, data, FinetuneSettings(steps=1, lr=1.0, batch_size=8, momentum=0.0, weight_decay=0.0))
    moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before, strict=True)])
    assert math.isclose(float(moved.norm()), GRAD_CLIP_NORM, rel_tol=1e-5)


def test_retrain_starts_from_a_haq_run(tmp_path: Path, straight_run) -> None:  # type: ignore[no-untyped-def]
    from jaqc.search.retrain import retrain

    graph = load_graph(straight_run.run_dir / "subnet.json")
    summary = retrain(graph, DATA, tmp_path / "retrain", epochs=1, lr=0.01, batch_size=64, seed=0, progress=False)
    assert summary["latency_ms"] == straight_run.summary["latency_ms"]


# --- options -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"budgett": 0.5}, "unknown haq option\\(s\\) 'budgett'; expected network, base_op"),
        ({"budget": 1.5}, "haq option 'budget' must be a number in \\(0, 1\\], got 1.5"),
        ({"budget": "half"}, "haq option 'budget' must be a number"),
        ({"budget_kind": "area"}, "haq option 'budget_kind' must be one of latency, energy, edap, got 'area'"),
        ({"episodes": 0}, "haq option 'episodes' must be an integer >= 1, got 0"),
        ({"finetune_steps": 2.5}, "haq option 'finetune_steps' must be an integer >= 1, got 2.5"),
        ({"episodes": 4, "warmup_episodes": 5}, "'warmup_episodes' \\(5\\) exceeds option 'episodes' \\(4\\)"),
        ({"base_op": "k7_e6"}, "haq option 'base_op' must be one of k3_e1"),
        ({"network": "x.json", "base_op": "k3_e1"}, "'base_op' describe the default network"),
        ({"finetune_lr": 0}, "haq option 'finetune_lr' must be a number in \\(0, inf\\]"),
        ({"episode_clipping": "kl"}, "haq option 'episode_clipping' must be one of minmax, pact, mse, got 'kl'"),
    ],
)
def test_bad_options_are_rejected_up_front(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(JaqcError, match=message):
        HaqRun(small_preset(), tmp_path / "run", options=options)
    assert not (tmp_path / "run").exists()


def test_bad_accelerator_and_network_are_rejected_up_front(tmp_path: Path) -> None:
    with pytest.raises(JaqcError, match="haq option 'accelerator': ACCEL 'tpu'"):
        HaqRun(small_preset(), tmp_path / "run", options={"accelerator": "tpu"})
    with pytest.raises(JaqcError, match="haq option 'network': no such file"):
        HaqRun(small_preset(), tmp_path / "run", options={"network": str(tmp_path / "missing.json")})
    with pytest.raises(JaqcError, match=r"has no subnet\.json"):
        HaqRun(small_preset(), tmp_path / "run", options={"network": str(tmp_path)})
    assert not (tmp_path / "run").exists()


def test_network_that_does_not_fit_the_data_or_the_budget(tmp_path: Path, plain_file: Path) -> None:
    preset = attrs.evolve(small_preset(), data=DataConfig(name="digits", resolution=16, channels=1))
    with pytest.raises(JaqcError, match="the network's input \\[1, 1, 8, 8\\] does not fit the preset's images"):
        HaqRun(preset, tmp_path / "a", options={"network": str(plain_file)}).run(progress=False)
    with pytest.raises(JaqcError, match=r"infeasible energy budget: 0\.2 of the 8-bit design.*choose a fraction >="):
        HaqRun(
            small_preset(), tmp_path / "b", options={"network": str(plain_file), "budget": 0.2, "budget_kind": "energy"}
        ).run(progress=False)


def test_a_network_that_lower_bits_do_not_speed_up_is_rejected() -> None:
    torch.manual_seed(0)
    model = default_network(supernet_preset("tiny", input_size=8), "k3_e6")
    graph = trace_model(model.eval(), model.example_input_shape)
    # Under the simulator's model (32-bit outputs, 1 MAC/cycle depthwise) 2-bit layers barely run faster.
    table = LayerCostTable(graph, load_accelerator("jaq-table2"), hw_model="simulator")
    settings = resolve_settings(small_preset(), {})
    with pytest.raises(JaqcError, match="lower bitwidths do not reduce this network's latency; the cheapest"):
        choose_budget(table, settings)


def test_settings_defaults() -> None:
    tiny = resolve_settings(search_preset("tiny"), {})
    assert (tiny.episodes, tiny.warmup_episodes, tiny.finetune_steps, tiny.final_finetune_steps) == (40, 20, 24, 96)
    assert (tiny.pretrain_epochs, tiny.finetune_lr, tiny.base_op, tiny.accelerator) == (
        10,
        0.002,
        "k3_e6",
        "jaq-table2",
    )
    assert tiny.budget is None and tiny.budget_kind.value == "latency" and tiny.network is None
    assert tiny.episode_clipping == "mse"
    digits32 = resolve_settings(search_preset("digits32"), {})  # a trained float network: the preset's retraining
    assert (digits32.pretrain_epochs, digits32.episodes) == (8, 40) == (search_preset("digits32").retrain_epochs, 40)
    cifar = resolve_settings(search_preset("cifar10", "/data"), {"episodes": 10})
    assert (cifar.episodes, cifar.warmup_episodes, cifar.pretrain_epochs) == (10, 5, 150)
    assert resolve_settings(search_preset("cifar10", "/data"), {}).episodes == 600


def test_budget_clamp_raises_a_budget_below_the_cheapest_fraction_to_it() -> None:
    torch.manual_seed(0)
    model = default_network(supernet_preset("tiny", input_size=8), "k3_e6")
    graph = trace_model(model.eval(), model.example_input_shape)
    table = LayerCostTable(graph, load_accelerator("jaq-table2"))
    low = {"budget": 0.01, "budget_kind": "energy"}
    with pytest.raises(JaqcError, match=r"infeasible energy budget: 0\.01 of the 8-bit design"):
        choose_budget(table, resolve_settings(small_preset(), low))
    fraction, bounds = choose_budget(table, resolve_settings(small_preset(), {**low, "budget_clamp": True}))
    assert fraction == math.ceil(bounds.minimum_fraction * 1e6) / 1e6 and bounds.within(bounds.minimum_cost)
    # a budget the network meets is kept as given
    assert choose_budget(table, resolve_settings(small_preset(), {"budget": 0.9, "budget_clamp": True}))[0] == 0.9
    with pytest.raises(JaqcError, match="haq option 'budget_clamp' must be true or false, got 'yes'"):
        resolve_settings(small_preset(), {"budget_clamp": "yes"})


@pytest.mark.parametrize(
    ("preset", "episodes", "warmup"), [("tiny", 40, 20), ("digits32", 40, 20), ("cifar10", 600, 20)]
)
def test_default_episodes_follow_the_preset(preset: str, episodes: int, warmup: int) -> None:
    """The CPU testbeds give HAQ about a JAQ search's wall time; elsewhere HAQ's own 600 episodes."""
    from jaqc.search.haq.run import resolve_settings
    from jaqc.search.presets import search_preset

    settings = resolve_settings(search_preset(preset, data_root="(unused)"), {})
    assert (settings.episodes, settings.warmup_episodes) == (episodes, warmup)
    assert resolve_settings(search_preset(preset, data_root="(unused)"), {"episodes": 7}).episodes == 7
