"""A user's own search space (issue #11, item 2): ResNet-style basic blocks (``resnet_space.py``), structurally
unlike FBNet, are traced, priced from their IR, searched with CSQ and the hardware cost, derived, retrained and
exported exactly like the built-in space."""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs
import pytest
import torch
from jaqc.ir import LayerKind, load_graph

from jaqc.cli import main
from jaqc.core import JaqcError
from jaqc.hw.model.lowering import PRICED_KINDS, layer_problem
from jaqc.nn.config import supernet_preset
from jaqc.nn.space import space_of, with_space
from jaqc.nn.subnet import DerivedSubnet
from jaqc.nn.supernet import Supernet
from jaqc.nn.tracing import trace_model
from jaqc.search.rundir import RunDir
from jaqc.search.runner import SearchRun
from jaqc.search.space_costs import SpaceCosts

from .test_jaq_runner import small_preset

pytestmark = pytest.mark.usefixtures("one_thread")

SPACE_FILE = Path(__file__).with_name("resnet_space.py")
SPEC = f"{SPACE_FILE}:ResNetSpace"


def _config(**overrides):  # type: ignore[no-untyped-def]
    return with_space(supernet_preset("tiny", input_size=8, **overrides), SPEC)


def test_the_space_is_built_from_the_users_classes() -> None:
    config = _config()
    assert config.space == SPEC and config.candidates == ("k3_w050", "k3_w100", "k5_w050", "k5_w100")
    assert config.block_specs() == [(8, 8, 1), (8, 16, 2), (16, 16, 1)] and config.num_blocks == 3
    net = Supernet(config)
    assert type(net.blocks[1].candidates["k5_w050"]).__name__ == "BasicBlock"
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    # a relative file path is recorded absolute (a resumed run may start from another directory)
    relative = with_space(supernet_preset("tiny"), os.path.relpath(SPACE_FILE) + ":ResNetSpace")
    assert relative.space == SPEC


def test_the_space_is_priced_from_its_ir() -> None:
    space = SpaceCosts.from_config(_config())
    block1 = space.candidate(1, "k5_w050")
    assert [p.name for p in block1.problems] == [
        "blocks.1.k5_w050.conv1", "blocks.1.k5_w050.conv2", "blocks.1.k5_w050.shortcut",
    ]  # fmt: skip
    conv1, conv2, shortcut = block1.problems
    assert (conv1.in_channels, conv1.out_channels, conv1.kernel, conv1.stride, conv1.in_h) == (8, 8, 5, 2, 8)
    assert (conv2.in_channels, conv2.out_channels, conv2.kernel, conv2.stride, conv2.in_h) == (8, 16, 5, 1, 4)
    assert (shortcut.in_channels, shortcut.out_channels, shortcut.kernel, shortcut.stride) == (8, 16, 1, 2)
    # both conv2 and the projection shortcut write the block output (through the add and the ReLU)
    assert block1.writes_output == (False, True, True)
    # blocks 0 and 2 add their input back; block 1 projects it
    assert space.residual == (True, False, True)
    assert [p.name for p in space.prefix] == ["stem.0"] and [p.name for p in space.suffix] == ["classifier"]


@pytest.mark.parametrize(
    ("ops", "bits"),
    [
        (("k3_w050", "k5_w100", "k3_w100"), ((2, 2), (4, 8), (8, 4))),
        (("k5_w100", "k3_w050", "k5_w050"), ((8, 8), (2, 4), (4, 2))),
    ],
)
def test_derived_costs_equal_the_traced_subnets(ops, bits) -> None:  # type: ignore[no-untyped-def]
    """The search's cost of a derived subnet is the cost model's lowering of that subnet traced on its own."""
    config = _config()
    space = SpaceCosts.from_config(config)
    model = DerivedSubnet(config, ops, bits).eval()
    graph = trace_model(model, model.example_input_shape)
    traced = [layer_problem(graph, x) for x in graph.topo_order() if x.kind in PRICED_KINDS]
    derived = space.derived_problems(ops, bits)

    def plain(problems):  # type: ignore[no-untyped-def]
        return [attrs.evolve(p, name="") for p in problems]

    assert plain(derived) == plain(traced)


def test_csq_ranks_the_users_channels() -> None:
    config = _config(quant=attrs.evolve(supernet_preset("tiny").quant, csq_k_percent=50.0))
    net = Supernet(config)
    block = net.blocks[2]
    op = block.candidates["k3_w100"]
    with torch.no_grad():  # conv2's input channels ranked by bn1's γ: the top half are 1, 3, 5, ...
        op.bn1.weight.copy_(torch.tensor([float(i % 2) * (i + 1) for i in range(16)]))
        net.stem[1].weight.copy_(torch.arange(8, dtype=torch.float32))  # block 0's input: the stem's last BN
    net.update_csq_channels()
    assert sorted(op.conv2.csq_channels.tolist()) == [1, 3, 5, 7, 9, 11, 13, 15]
    assert net.csq_channels(0) == [4, 5, 6, 7]
    # the block input's Ω is shared by every conv that reads it, the projection shortcut included
    shortcut = net.blocks[1].candidates["k3_w050"].shortcut
    assert sorted(shortcut.csq_channels.tolist()) == net.csq_channels(1) != []


def test_an_interrupted_search_of_the_space_resumes_exactly(tmp_path: Path) -> None:
    preset = attrs.evolve(small_preset(), supernet=_config())
    straight = SearchRun(preset, tmp_path / "straight").run(progress=False)
    assert straight is not None
    assert SearchRun(preset, tmp_path / "resumed").run(stop_after_steps=11, progress=False) is None
    resumed = SearchRun(preset, tmp_path / "resumed", resume=True).run(progress=False)
    assert resumed is not None
    for name in ("architecture.json", "accelerator.json", "schedule.json"):
        resumed_file, straight_file = tmp_path / "resumed" / name, straight.run_dir / name
        assert json.loads(resumed_file.read_text()) == json.loads(straight_file.read_text())
    assert set(straight.summary["architecture"]["ops"]) <= set(preset.supernet.candidates)


def test_jaqc_search_retrain_export_on_the_users_space(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(SPACE_FILE.parent)  # the space named by a relative path, as a user types it
    run = tmp_path / "run"
    assert main(["search", "--space", "resnet_space.py:ResNetSpace", "--epochs", "1", "--run-dir", str(run)]) == 0
    recipe = RunDir.open(run).read_config()["recipe"]
    assert recipe["overrides"]["space"] == SPEC  # absolute: `--resume` works from anywhere
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["architecture"]["ops"]) <= set(space_of(_config()).ops)
    subnet = load_graph(run / "subnet.json")
    names = [x.name for x in subnet.layers_of(LayerKind.CONV2D)]
    assert "blocks.1.shortcut" in names and "blocks.2.conv2" in names and not any("head" in n for n in names)
    schedule = json.loads((run / "schedule.json").read_text())
    assert [x["name"] for x in schedule["layers"]] == [x.name for x in subnet.topo_order() if x.kind in PRICED_KINDS]
    monkeypatch.chdir(tmp_path)
    assert main(["retrain", str(run), "--epochs", "1"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["export", str(run), "-o", str(tmp_path / "export")]) == 0
    assert (tmp_path / "export" / "model.onnx").stat().st_size > 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("resnet", "SupernetConfig.space must be 'fbnet' or 'module:attribute'"),
        ("missing_space.py:Space", "search space '.*missing_space.py:Space': no such file"),
        (f"{SPACE_FILE}:Nope", "no factory 'Nope' in"),
        (f"{SPACE_FILE}:BasicBlock", "building it failed: TypeError"),
        ("jaqc.nn.candidates:ChannelShuffle", "got a ChannelShuffle, not a jaqc.nn.space.SearchSpace"),
    ],
)
def test_a_bad_space_is_named(spec: str, message: str) -> None:
    with pytest.raises(JaqcError, match=message):
        with_space(supernet_preset("tiny"), spec)


def test_a_space_whose_ops_break_the_rules_is_named(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    source = SPACE_FILE.read_text()
    hook = "    def input_convs(self) -> list[SearchConv2d]:\n"
    start = source.index(hook)
    broken = source[:start] + source[source.index("\n\n", start) + 2 :]
    assert broken != source
    (tmp_path / "no_hooks.py").write_text(broken)
    with pytest.raises(JaqcError, match="BasicBlock has quantized convs but does not say which read its input"):
        Supernet(with_space(supernet_preset("tiny", input_size=8), f"{tmp_path / 'no_hooks.py'}:ResNetSpace"))
    with pytest.raises(JaqcError, match="has no op 'k7_w100'"):
        Supernet(attrs.evolve(_config(), candidates=("k3_w050", "k7_w100")))
    assert main(["search", "--space", SPEC, "--method", "haq"]) == 2
    assert "--space applies to --method jaq / autonba, not haq" in capsys.readouterr().err
