"""Seeds (issue #12, item 6): one search per seed into sibling run directories and a summary with mean ± sd of
every figure; finished seeds are skipped, an interrupted one resumes."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import attrs
import pytest

from jaqc.cli import main
from jaqc.core import JaqcError
from jaqc.search.rundir import write_summary
from jaqc.search.runner import SearchRun
from jaqc.search.seeds import parse_seeds, run_seeds, seed_dir, summarize, write_seeds_summary

from .test_jaq_runner import small_preset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0,x", "--seeds '0,x': 'x' is not an integer"),
        ("1,1", "seed 1 is given twice"),
        ("0,-1", r"-1 is outside 0\.\.2\^63-1"),
        ("-1", r"--seeds '-1': a count of seeds must be 1\.\.100 \(3 runs seeds 0,1,2\); one seed alone is --seed S"),
        ("0", r"a count of seeds must be 1\.\.100"),
        ("101", r"a count of seeds must be 1\.\.100"),
        ("three", r"--seeds 'three': give a count of seeds \(3 runs seeds 0,1,2\) or a list such as 0,1,2"),
    ],
)
def test_bad_seeds_are_named(text: str, message: str) -> None:
    with pytest.raises(JaqcError, match=message):
        parse_seeds(text)


def test_parse_seeds() -> None:
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    assert parse_seeds("3") == [0, 1, 2] and parse_seeds(" 1 ") == [0]  # a lone number counts seeds
    assert parse_seeds("7,5") == [7, 5]


def _fake_run(folder: Path, seed: int, acc: float, latency: float, retrained: float | None = None) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    summary = {"method": "jaq", "preset": "tiny", "architecture": {"ops": ["skip"], "bits": [[2, 2]]}}
    write_summary(folder, {**summary, "val_acc": acc, "latency_ms": latency, "energy_mJ": float("nan")})
    if retrained is not None:
        (folder / "retrain").mkdir()
        write_summary(folder / "retrain", {"test_accuracy": retrained, "latency_ms": latency})


def test_the_summary_is_mean_and_sample_sd_of_each_figure(tmp_path: Path) -> None:
    _fake_run(seed_dir(tmp_path, 0), 0, 0.9, 2.0, retrained=0.95)
    _fake_run(seed_dir(tmp_path, 3), 3, 0.8, 4.0)
    summary = write_seeds_summary(tmp_path, [0, 3, 7])  # seed 7 has not run
    assert summary["finished"] == [0, 3] and summary["seeds"] == [0, 3, 7]
    acc = summary["figures"]["val_acc"]
    assert acc["values"] == [0.9, 0.8] and acc["mean"] == pytest.approx(0.85)
    assert acc["sd"] == pytest.approx(statistics.stdev([0.9, 0.8]))
    assert summary["figures"]["latency_ms"]["mean"] == 3.0
    assert "energy_mJ" not in summary["figures"]  # not finite in every seed: not averaged
    assert summary["retrained_seeds"] == [0] and summary["retrained"]["test_accuracy"] == {
        "mean": 0.95, "sd": 0.0, "values": [0.95],
    }  # fmt: skip
    assert json.loads((tmp_path / "seeds.json").read_text()) == summary
    table = (tmp_path / "seeds.md").read_text()
    assert "| val_acc | 0.85 ± 0.071 | 0.9, 0.8 |" in table and "| retrained test_accuracy | 0.95 ± 0 | 0.95 |" in table
    with pytest.raises(JaqcError, match="none of the seeds \\[7\\] has finished"):
        summarize(tmp_path, [7])


def test_seeds_run_skip_the_finished_and_resume_the_interrupted(tmp_path: Path) -> None:
    base = small_preset()

    def preset(seed: int):  # type: ignore[no-untyped-def]
        return attrs.evolve(base, settings=attrs.evolve(base.settings, seed=seed, epochs=1))

    calls: list[str] = []

    def start(seed: int, path: Path) -> None:
        calls.append(f"start {seed}")
        SearchRun(preset(seed), path).run(progress=False)

    def resume(path: Path) -> None:
        calls.append(f"resume {path.name}")
        SearchRun(preset(int(path.name.split("-")[1])), path, resume=True).run(progress=False)

    assert SearchRun(preset(1), seed_dir(tmp_path, 1)).run(stop_after_steps=8, progress=False) is None  # killed
    summary = run_seeds(tmp_path, [0, 1], start, resume)
    assert calls == ["start 0", "resume seed-1"] and summary["finished"] == [0, 1]
    straight = SearchRun(preset(1), tmp_path / "straight-1").run(progress=False)
    assert straight is not None
    resumed = json.loads((seed_dir(tmp_path, 1) / "summary.json").read_text())
    assert resumed["architecture"] == straight.summary["architecture"]  # the resumed seed is the uninterrupted one
    assert summary["figures"]["latency_ms"]["values"][1] == straight.summary["latency_ms"]
    calls.clear()
    assert run_seeds(tmp_path, [0, 1], start, resume)["finished"] == [0, 1] and calls == []  # all done: skipped


def test_the_cli_refuses_seeds_with_seed_or_resume(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["search", "--seeds", "0,1", "--seed", "3", "--run-dir", str(tmp_path / "a")]) == 2
    assert "--seeds runs (and resumes) one search per seed; drop --seed" in capsys.readouterr().err
    assert main(["search", "--seeds", "0,0", "--run-dir", str(tmp_path / "b")]) == 2
    assert "seed 0 is given twice" in capsys.readouterr().err


def test_retrain_seeds_retrains_the_finished_ones_not_yet_retrained(tmp_path: Path) -> None:
    from jaqc.search.seeds import retrain_seeds

    _fake_run(seed_dir(tmp_path, 0), 0, 0.9, 2.0, retrained=0.95)
    _fake_run(seed_dir(tmp_path, 1), 1, 0.8, 4.0)
    write_seeds_summary(tmp_path, [0, 1])
    retrained: list[str] = []

    def retrain(path: Path) -> None:
        retrained.append(path.name)
        (path / "retrain").mkdir()
        write_summary(path / "retrain", {"test_accuracy": 0.85, "latency_ms": 4.0})

    summary = retrain_seeds(tmp_path, retrain)
    assert retrained == ["seed-1"] and summary["retrained"]["test_accuracy"]["values"] == [0.95, 0.85]
    (tmp_path / "seeds.json").write_text('{"finished": "all"}')
    with pytest.raises(JaqcError, match=r"seeds\.json: not a seeds summary"):
        retrain_seeds(tmp_path, retrain)
