"""JAQ search runs: presets, a resumed run equals an uninterrupted one, outputs, CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from jaqc.ir import load_graph, verify
from search_cases import small_preset

from jaqc.cli import main
from jaqc.core import JaqcError
from jaqc.hw.generator.objective import HardwareWeights
from jaqc.search.presets import search_preset
from jaqc.search.rundir import RunDir, without_time
from jaqc.search.runner import SearchRun, preset_from_run

pytestmark = pytest.mark.usefixtures("one_thread")  # searches at 1 thread (conftest.one_thread)


def test_presets() -> None:
    tiny = search_preset("tiny")
    assert tiny.data.name == "digits" and tiny.supernet.in_channels == 1 and tiny.settings.epochs == 8
    cifar = search_preset("cifar10", "/data/cifar", epochs=3, lam=0.2)
    assert (cifar.settings.epochs, cifar.settings.lam, cifar.retrain_epochs) == (3, 0.2, 600)
    assert search_preset("imagenet", "/data/in").settings.epochs == 45
    assert search_preset("tiny", hw={"energy": 0.1, "latency": 0.8, "area": 0.1}).settings.hw == HardwareWeights(
        energy=0.1, latency=0.8, area=0.1
    )
    with pytest.raises(JaqcError, match="give the data directory"):
        search_preset("cifar100")
    with pytest.raises(JaqcError, match="unknown search preset 'mnist'"):
        search_preset("mnist")


def _outputs(run_dir: Path) -> dict:
    return {
        name: json.loads((run_dir / name).read_text())
        for name in ("architecture.json", "accelerator.json", "schedule.json")
    }


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    run_dir = tmp_path_factory.mktemp("search") / "straight"
    outcome = SearchRun(small_preset(), run_dir).run(progress=False)
    assert outcome is not None
    return outcome


def test_resumed_run_equals_uninterrupted(tmp_path: Path, straight_run) -> None:  # type: ignore[no-untyped-def]
    preset = small_preset()
    straight = straight_run
    assert SearchRun(preset, tmp_path / "resumed").run(stop_after_steps=11, progress=False) is None  # "killed"
    assert not (tmp_path / "resumed" / "architecture.json").exists()
    resumed = SearchRun(preset, tmp_path / "resumed", resume=True).run(progress=False)
    assert resumed is not None
    assert _outputs(tmp_path / "resumed") == _outputs(straight.run_dir)
    metrics = [without_time(RunDir.open(d).read_metrics()) for d in (straight.run_dir, tmp_path / "resumed")]
    assert metrics[0] == metrics[1]
    subnet = load_graph(tmp_path / "resumed" / "subnet.json")
    verify(subnet)
    assert subnet.accelerator is not None and all(x.mapping is not None for x in subnet.layers_of(*_weighted()))
    for plot in ("training.png", "hardware.png", "architecture.png"):
        assert (tmp_path / "resumed" / "plots" / plot).read_bytes().startswith(b"\x89PNG")
    assert straight.summary["latency_ms"] == resumed.summary["latency_ms"] > 0
    # the default hardware model, named in the summary, the schedule and the run's settings
    assert straight.summary["hw_model"] == "deployment" == _outputs(straight.run_dir)["schedule.json"]["hw_model"]
    config = json.loads((straight.run_dir / "config.json").read_text())
    assert "deployment" in json.dumps(config)
    assert subnet.hw_model == "deployment"


def test_search_outcome_is_pinned(straight_run) -> None:  # type: ignore[no-untyped-def]
    """Guard (issue #11, item 6): the search derives a pinned architecture, accelerator and mappings (at 1
    thread). Pinned by the config-derived pricing before #11's refactors, which all kept it; re-pinned for issue
    #12's annealed temperature schedule and weight-only warm-up (a change of the search itself), and for #12's
    faster CSQ step (one convolution of the rebuilt input instead of conv(A) + conv(Δ), candidates mixed in one
    tensor op: the same values up to float rounding, which moved the last block's bits and the accelerator),
    for #12's step-by-step anneal with a warm-up counted in steps (another schedule, so another search), and for
    #12's one-node CSQ conv (β_w's gradient of a depthwise conv from one convolution per candidate in the
    architecture step: the same values up to float rounding, which moved one block's op and two blocks' bits), and
    for its depthwise path with one convolution fewer (the likeliest candidate's term from the output: float
    rounding again, which moved the last two blocks' bits)."""
    golden = json.loads((Path(__file__).parents[1] / "golden" / "small_search_outcome.json").read_text())
    summary = straight_run.summary
    assert summary["architecture"] == golden["architecture"]
    assert summary["accelerator"] == golden["accelerator"]
    schedule = json.loads((straight_run.run_dir / "schedule.json").read_text())
    layers = [{k: x[k] for k in ("name", "tile", "loop_order", "cycles", "energy_nJ")} for x in schedule["layers"]]
    assert layers == golden["schedule_layers"]
    from jaqc.search.space_costs import SpaceCosts

    identity = SpaceCosts.from_config(small_preset().supernet).identity_blocks(golden["architecture"]["ops"])
    assert summary["identity_blocks"] == identity and identity[0] and not identity[-1]


def test_hardware_plot_ends_at_the_final_design(tmp_path: Path, straight_run) -> None:  # type: ignore[no-untyped-def]
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(straight_run.run_dir, run_dir)
    (run_dir / "summary.json").unlink()
    run = SearchRun(small_preset(), run_dir, resume=True)
    outcome = run.run(progress=False)  # the finish again, from the last checkpoint
    assert outcome is not None
    final = run.final_hardware_point(run.rundir.read_metrics())
    assert final["expected_area_mm2"] == outcome.summary["area_mm2"]  # the output accelerator's area
    assert final["step"] == max(r["step"] for r in run.rundir.read_metrics())
    # the finish redone from the last checkpoint (a kill while the outputs were written) writes what the
    # uninterrupted run wrote: the CSQ channel sets (not in the supernet's state_dict) are restored too
    untimed = [
        {k: v for k, v in s.items() if not k.endswith("_seconds")} for s in (straight_run.summary, outcome.summary)
    ]
    assert untimed[0] == untimed[1]
    assert _outputs(run_dir) == _outputs(straight_run.run_dir)


def _weighted():  # type: ignore[no-untyped-def]
    from jaqc.ir import LayerKind

    return (LayerKind.CONV2D, LayerKind.LINEAR)


def test_run_directory_rules(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    with pytest.raises(JaqcError):
        SearchRun(small_preset(), tmp_path / "used")
    with pytest.raises(JaqcError, match="config"):
        preset_from_run(tmp_path / "used")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--preset", "cifar10"], "error: preset cifar10: give the data directory"),
        (["search", "--preset", "nope"], "error: unknown search preset 'nope'"),
        (["retrain", "no/such/run"], "error: "),
    ],
)
def test_cli_errors(args: list[str], message: str, capsys) -> None:
    assert main(args) == 2
    assert capsys.readouterr().err.startswith(message)


def test_retrain_reports_accuracy_and_hardware(straight_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from jaqc.search.retrain import retrain

    run_dir = tmp_path / "run"
    shutil.copytree(straight_run.run_dir, run_dir)
    graph = load_graph(run_dir / "subnet.json")
    summary = retrain(graph, small_preset().data, run_dir / "retrain", epochs=2, lr=0.05, batch_size=64, progress=False)
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["test_samples"] == 359
    assert summary["latency_ms"] > 0 and summary["energy_mJ"] > 0 and summary["area_mm2"] > 0
    assert summary["accelerator"] == json.loads((run_dir / "accelerator.json").read_text())
    assert summary["hw_model"] == "deployment"  # the subnet's own model
    trained = load_graph(run_dir / "retrain" / "subnet.json")
    assert [x.quant for x in trained] == [x.quant for x in graph]  # the searched bits are kept
    assert (run_dir / "retrain" / "plots" / "retrain.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(JaqcError, match="must be >= 1"):
        retrain(graph, small_preset().data, run_dir / "again", epochs=0)
    simulator = retrain(
        graph, small_preset().data, run_dir / "sim", epochs=1, batch_size=64, progress=False, hw_model="simulator"
    )
    assert simulator["hw_model"] == "simulator" and load_graph(run_dir / "sim" / "subnet.json").hw_model == "simulator"
    # the simulator's 32-bit outputs and 1 MAC/cycle depthwise layers: slower than the deployment model says
    assert simulator["latency_ms"] > summary["latency_ms"]
    # a learning rate that overflows the weights stops with an error instead of training NaN for every epoch
    with pytest.raises(JaqcError, match=r"retraining '.*' diverged: the loss is nan at step \d+ \(epoch 0\)"):
        retrain(graph, small_preset().data, run_dir / "diverged", epochs=1, lr=1e38, progress=False)
    # a float warm-up: the first epoch trains in floating point (its records say so), the second quantized
    warm = retrain(graph, small_preset().data, run_dir / "warm", epochs=2, progress=False, float_epochs=1)
    assert warm["float_epochs"] == 1 and summary["float_epochs"] == 0
    records = RunDir(run_dir / "warm").read_metrics()
    assert {r["epoch"] for r in records if r.get("float")} == {0}
    assert all(not r.get("float") for r in records if r["epoch"] == 1)
    assert [x.quant for x in load_graph(run_dir / "warm" / "subnet.json")] == [x.quant for x in graph]
    with pytest.raises(JaqcError, match=r"float_epochs must be in 0\.\.1 \(at least one quantized epoch of 2\), got 2"):
        retrain(graph, small_preset().data, run_dir / "all-float", epochs=2, float_epochs=2)
    assert not (run_dir / "all-float").exists()


def test_retrain_activation_clipping_is_chosen_recorded_and_stored(straight_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from jaqc.nn.quantizers import ActivationQuantizer
    from jaqc.nn.subnet import build_subnet, stored_clipping
    from jaqc.search.retrain import retrain

    graph = load_graph(straight_run.run_dir / "subnet.json")
    assert {stored_clipping(x) for x in graph if x.quant is not None} == {"minmax"}  # the search's quantizers
    data = small_preset().data
    mse = retrain(graph, data, tmp_path / "mse", epochs=1, batch_size=64, progress=False, clipping="mse")
    assert mse["activation_clipping"] == "mse"
    trained = load_graph(tmp_path / "mse" / "subnet.json")
    assert {stored_clipping(x) for x in trained if x.quant is not None} == {"mse"}  # act_quant.clip_factor kept
    rebuilt = [m for m in build_subnet(trained).modules() if isinstance(m, ActivationQuantizer)]
    assert rebuilt and all(q.mse and bool(q.initialized) for q in rebuilt)
    # no clipping given: the subnet's stored one; minmax given to an mse subnet drops its mse state
    assert retrain(trained, data, tmp_path / "again", epochs=1, progress=False)["activation_clipping"] == "mse"
    back = retrain(trained, data, tmp_path / "minmax", epochs=1, progress=False, clipping="minmax")
    assert back["activation_clipping"] == "minmax"
    assert {stored_clipping(x) for x in load_graph(tmp_path / "minmax" / "subnet.json") if x.quant} == {"minmax"}
    assert all("act_quant.clip_factor" in x.weights for x in trained if x.quant)  # the caller's graph untouched
    with pytest.raises(JaqcError, match="retrain clipping must be one of minmax, pact, mse, got 'kl'"):
        retrain(graph, data, tmp_path / "x", epochs=1, clipping="kl")
    assert not (tmp_path / "x").exists()


def test_retraining_from_scratch_draws_every_weight_afresh(straight_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """init="scratch": the subnet's weights are drawn afresh (the same draw for a seed, none equal to the
    supernet's), its batch norms and activation ranges start anew; the summary says how it started."""
    import torch

    from jaqc.nn.quantizers import ActivationQuantizer
    from jaqc.nn.subnet import build_subnet, reinitialize
    from jaqc.search.retrain import retrain

    graph = load_graph(straight_run.run_dir / "subnet.json")
    supernet = build_subnet(graph)
    first, second = build_subnet(graph), build_subnet(graph)
    reinitialize(first, 5)
    reinitialize(second, 5)
    for (name, a), b, c in zip(first.state_dict().items(), second.state_dict().values(), supernet.state_dict().values(),
                               strict=True):  # fmt: skip
        assert torch.equal(a, b), name
        if name.endswith(".weight") and a.dim() == 4:  # every conv weight differs from the supernet's
            assert not torch.equal(a, c), name
        if name.endswith("running_mean"):
            assert not a.any(), name
    quantizers = [m for m in first.modules() if isinstance(m, ActivationQuantizer)]
    assert quantizers and not any(bool(q.initialized) for q in quantizers)
    summary = retrain(graph, small_preset().data, tmp_path / "s", epochs=1, progress=False, init="scratch")
    assert summary["init"] == "scratch" and 0.0 <= summary["test_accuracy"] <= 1.0
    with pytest.raises(JaqcError, match="retrain init must be one of supernet, scratch, got 'fresh'"):
        retrain(graph, small_preset().data, tmp_path / "x", epochs=1, init="fresh")


def test_compare_gives_haq_the_fraction_of_its_8bit_design_jaq_reached(straight_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import math
    import shutil

    from jaqc.search.compare import CompareSettings, Comparison

    out = tmp_path / "c"
    shutil.copytree(straight_run.run_dir, out / "runs" / "jaq")
    logs: list[str] = []
    settings = CompareSettings(methods=("jaq", "haq"), ablation=False, episodes=3, haq_budget_kind="energy")
    comparison = Comparison(out, settings, progress=False, log=logs.append)
    fractions = {kind: comparison.jaq_fraction("jaq", kind) for kind in ("latency", "energy", "edap")}
    arch = json.loads((straight_run.run_dir / "architecture.json").read_text())
    assert any(min(bits) < 8 for bits in arch["bits"])  # so the searched subnet is cheaper than at w8a8
    assert all(0 < f < 1 for f in fractions.values())
    # the area is the same accelerator's: the EDAP fraction is the energy one times the latency one
    assert fractions["edap"] == pytest.approx(fractions["energy"] * fractions["latency"], rel=1e-9)
    options = comparison._haq_options([{"label": "jaq", "method": "jaq"}])
    budget = math.ceil(fractions["energy"] * 1e6) / 1e6
    assert options == {"budget_kind": "energy", "episodes": 3, "budget": budget, "budget_clamp": True}
    assert logs[-1] == f"haq: budget {budget:g} of its 8-bit energy, the fraction jaq reached"
    # an explicit budget is HAQ's as given; without a JAQ run, HAQ keeps its own default
    explicit = Comparison(out, attrs.evolve(settings, haq_budget=0.7), progress=False)
    assert explicit._haq_options([{"label": "jaq", "method": "jaq"}])["budget"] == 0.7
    assert "budget" not in comparison._haq_options([])
