"""A schedule that anneals in any run length (issue #12, item 4): the Gumbel temperature goes from T0 to the final
temperature over the epochs after a weight-only warm-up, both recorded in config.json; the summary reports how far
each derived choice leads the runner-up and warns below the threshold."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import attrs
import pytest
import torch

from jaqc.core import JaqcError
from jaqc.nn.config import ScheduleKind, TemperatureSchedule
from jaqc.search.jaq import MARGIN_THRESHOLD, DerivedArchitecture, JaqSearchSettings, choice_margins
from jaqc.search.rundir import RunDir
from jaqc.search.runner import SearchRun

from .test_jaq_runner import small_preset

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_anneal_schedule_ends_at_the_final_temperature_in_any_length() -> None:
    for epochs in (1, 2, 7, 90):
        schedule = TemperatureSchedule(initial=5.0, kind=ScheduleKind.ANNEAL, final=0.1, epochs=epochs)
        values = [schedule.temperature(e) for e in range(epochs + 2)]
        assert values[0] == 5.0
        if epochs > 1:
            assert values[epochs - 1] == pytest.approx(0.1, rel=1e-12) and values[epochs + 1] == pytest.approx(0.1)
            ratios = [b / a for a, b in itertools.pairwise(values[:epochs])]
            assert ratios == pytest.approx([(0.1 / 5.0) ** (1 / (epochs - 1))] * (epochs - 1))  # one constant decay
    # step by step: one constant factor from T0 at step 0 to the final temperature at the last step
    schedule = TemperatureSchedule(initial=5.0, kind=ScheduleKind.ANNEAL, final=0.1, epochs=2)
    steps = [schedule.temperature_at_step(s, 6) for s in range(8)]
    assert steps[0] == 5.0 and steps[5] == pytest.approx(0.1, rel=1e-12) and steps[7] == pytest.approx(0.1)
    assert [b / a for a, b in itertools.pairwise(steps[:6])] == pytest.approx([(0.1 / 5.0) ** 0.2] * 5)
    assert schedule.temperature_at_step(0, 1) == 5.0  # one search step: nothing to anneal
    with pytest.raises(JaqcError, match="step must be >= 0 and steps >= 1, got -1 and 3"):
        schedule.temperature_at_step(-1, 3)
    with pytest.raises(JaqcError, match="per-step temperatures are the anneal schedule's, not the exponential one's"):
        TemperatureSchedule().temperature_at_step(0, 3)
    # 90 epochs: FBNet's per-epoch decay, 0.956
    assert (0.1 / 5.0) ** (1 / 89) == pytest.approx(0.957, abs=1e-3)


@pytest.mark.parametrize(
    ("epochs", "steps_per_epoch", "fraction", "warmup"),
    [(8, 10, 0.1, 8), (90, 100, 0.1, 900), (2, 96, 0.1, 19), (1, 1, 0.5, 0), (3, 2, 0.5, 3), (1, 4, 0.99, 3)],
)
def test_warmup_steps_round_half_up_and_leave_a_search_step(
    epochs: int, steps_per_epoch: int, fraction: float, warmup: int
) -> None:
    settings = JaqSearchSettings(epochs=epochs, warmup_fraction=fraction)
    assert settings.warmup_steps(steps_per_epoch) == warmup
    total = epochs * steps_per_epoch
    assert settings.schedule_record(steps_per_epoch) == {
        "steps_per_epoch": steps_per_epoch, "steps": total, "warmup_steps": warmup, "anneal_steps": total - warmup,
    }  # fmt: skip
    schedule = settings.temperature_schedule(5.0)
    assert (schedule.kind, schedule.final) == (ScheduleKind.ANNEAL, 0.1)


def test_bad_schedule_settings_are_named() -> None:
    with pytest.raises(JaqcError, match=r"warmup_fraction must be in \[0, 1\), got 1\.0"):
        JaqSearchSettings(warmup_fraction=1.0)
    with pytest.raises(JaqcError, match="final_temperature must be a finite number > 0"):
        JaqSearchSettings(final_temperature=0.0)


def test_a_run_warms_up_then_anneals_and_records_both(tmp_path: Path) -> None:
    preset = small_preset()
    preset = attrs.evolve(preset, settings=attrs.evolve(preset.settings, epochs=3, warmup_fraction=0.34))
    outcome = SearchRun(preset, tmp_path / "run").run(progress=False)
    assert outcome is not None
    run = RunDir.open(tmp_path / "run")
    config = run.read_config()
    schedule = config["schedule"]
    per_epoch = schedule["steps_per_epoch"]
    warmup = math.floor(0.34 * 3 * per_epoch + 0.5)
    assert schedule == {"steps_per_epoch": per_epoch, "steps": 3 * per_epoch, "warmup_steps": warmup,
                        "anneal_steps": 3 * per_epoch - warmup}  # fmt: skip
    steps = [r for r in run.read_metrics() if "w_loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 3 * per_epoch + 1))
    # the warm-up: weights only, at T0 (no architecture step, no hardware), a whole number of steps
    assert all(r.get("warmup") and "a_loss" not in r and "e_hw" not in r for r in steps[:warmup])
    assert {r["temperature"] for r in steps[:warmup]} == {5.0}
    # then the schedule anneals step by step from T0 at the first search step to the final one at the last
    search = steps[warmup:]
    assert all("a_loss" in r and "warmup" not in r for r in search)
    temperatures = [r["temperature"] for r in search]
    assert temperatures[0] == 5.0 and temperatures[-1] == pytest.approx(0.1, rel=1e-12)
    ratios = [b / a for a, b in itertools.pairwise(temperatures)]
    assert ratios == pytest.approx([(0.1 / 5.0) ** (1 / (len(search) - 1))] * (len(search) - 1))
    settings, gumbel = config["preset"]["settings"], config["preset"]["supernet"]["gumbel"]["temperature"]
    assert (settings["warmup_fraction"], settings["final_temperature"]) == (0.34, 0.1)
    assert (gumbel["kind"], gumbel["initial"], gumbel["final"]) == ("anneal", 5.0, 0.1)
    summary = outcome.summary
    margins = summary["margins"]
    assert margins["threshold"] == MARGIN_THRESHOLD and len(margins["alpha"]) == len(summary["architecture"]["ops"])
    low = [b for b, m in enumerate(margins["alpha"]) if m < MARGIN_THRESHOLD]
    assert [w for w in summary["margin_warnings"] if " op " in w] == [
        w for w in summary["margin_warnings"] if any(w.startswith(f"block {b}: op") for b in low)
    ]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["margins"] == margins


def test_margins_are_the_gap_to_the_runner_up() -> None:
    """Exact margins and warnings for hand-set α, β (an identity block's bits are not reported)."""
    from jaqc.nn.supernet import Supernet

    supernet = Supernet(small_preset().supernet)  # 5 blocks, ops (k3_e1, k5_e1, skip), bits (2, 4, 8)
    with torch.no_grad():
        supernet.arch.alpha.zero_()
        supernet.arch.alpha[0] = torch.log(torch.tensor([0.5, 0.3, 0.2]))  # margin 0.2
        supernet.arch.alpha[1] = torch.log(torch.tensor([0.34, 0.33, 0.33]))  # margin 0.01: undecided
        supernet.arch.beta_w.zero_()
        supernet.arch.beta_w[0, 0] = torch.log(torch.tensor([0.1, 0.3, 0.6]))  # 8 bits lead 4 by 0.3
    derived = DerivedArchitecture(ops=("k3_e1",) * 5, bits=((8, 8),) * 5)
    result = choice_margins(supernet, derived, identity=[False, False, False, False, True])
    assert result["margins"]["alpha"][:2] == pytest.approx([0.2, 0.01], abs=1e-6)  # (float32 softmax)
    assert result["margins"]["beta_w"][0] == pytest.approx(0.3, abs=1e-6)
    warnings = result["margin_warnings"]
    assert "block 1: op k3_e1 leads k5_e1 by 0.010 (< 0.05)" in warnings
    assert not any(w.startswith("block 0: op") or w.startswith("block 0: w bits") for w in warnings)
    assert "block 0: a bits 2 lead 4 by 0.000 (< 0.05)" in warnings  # uniform β_a: undecided
    assert not any(w.startswith("block 4: w bits") or w.startswith("block 4: a bits") for w in warnings)


def test_the_cli_takes_the_schedule_and_refuses_it_where_it_means_nothing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from jaqc.cli import main

    assert main(["search", "--warmup-fraction", "1.5", "--run-dir", str(tmp_path / "a")]) == 2
    assert "warmup_fraction must be in [0, 1), got 1.5" in capsys.readouterr().err
    assert main(["search", "--method", "haq", "--final-temperature", "0.5", "--run-dir", str(tmp_path / "b")]) == 2
    assert "--final-temperature applies to --method jaq / autonba" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    (tmp_path / "c").mkdir()
    assert main(["search", "--resume", str(tmp_path / "c"), "--final-temperature", "0.5"]) == 2
    assert "drop final_temperature" in capsys.readouterr().err
