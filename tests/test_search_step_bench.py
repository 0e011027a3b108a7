"""benchmarks/search_step.py on ``tiny`` (one timed step per mode): the JSON it prints has the keys the docs and
issue #12 name, consistent with each other, and it measures the search engine's own steps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "search_step.py"


@pytest.fixture(scope="module")
def result() -> dict:
    args = ["--preset", "tiny", "--batch", "16", "--threads", "1", "--steps", "1", "--rounds", "2"]
    args += ["--modes", "float,csq,naive_common", "--same-process", "2"]
    done = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_headline_keys_and_their_ratios(result: dict) -> None:
    run = result["runs"][0]
    fp, csq = run["modes"]["float"], run["modes"]["csq"]
    assert result["float_step_s"] == fp["step_s"] == pytest.approx(fp["weight_step_s"] + fp["arch_step_s"], abs=2e-4)
    assert result["csq_step_s"] == csq["step_s"]
    assert result["csq_over_float_step_time"] == pytest.approx(csq["step_s"] / fp["step_s"], abs=1e-3)
    assert run["csq_over_float_weight_step"] == pytest.approx(csq["weight_step_s"] / fp["weight_step_s"], abs=1e-3)
    assert (result["device"], result["batch"], run["threads"]) == ("cpu", 16, 1)


def test_each_mode_keeps_its_fastest_round(result: dict) -> None:
    """Two interleaved processes per mode; a mode's step is its fastest weight step plus its fastest
    architecture step, so it is no slower than either round's."""
    for entry in result["runs"][0]["modes"].values():
        assert len(entry["rounds_step_s"]) == 2
        assert entry["step_s"] <= min(entry["rounds_step_s"]) + 2e-4


def test_memory_orders_the_modes(result: dict) -> None:
    """Saved bytes as csq_memory.py measures them: CSQ near float, the common-way naive mode far above."""
    run = result["runs"][0]
    saved = {name: max(e["saved_bytes_weight_step"], e["saved_bytes_arch_step"]) for name, e in run["modes"].items()}
    assert saved["float"] < saved["csq"] < 1.2 * saved["float"]
    assert saved["naive_common"] > 4 * saved["csq"]
    assert run["csq_over_float_saved_bytes"] == pytest.approx(saved["csq"] / saved["float"], abs=1e-3)
    assert run["naive_common_over_csq_saved_bytes"] == pytest.approx(saved["naive_common"] / saved["csq"], abs=1e-3)
    assert all(entry["peak_rss_bytes"] > 0 and entry["cuda_peak_bytes"] is None for entry in run["modes"].values())


def test_the_search_loop_shares_add_up(result: dict) -> None:
    loop = result["search_loop"]
    assert sum(loop["share"].values()) == pytest.approx(1.0, abs=2e-3)
    assert loop["images_per_s"] == pytest.approx(2 * 16 / loop["seconds_per_iteration"], rel=1e-3)
    assert loop["hw_refresh_every"] == 16  # the tiny preset's


def test_unknown_modes_are_refused() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--modes", "float,fast"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "unknown mode(s) fast" in done.stderr


def test_the_same_process_comparison_alternates_float_and_csq(result: dict) -> None:
    """--same-process: float and CSQ timed alternately in one process; fastest and median of each, and their
    ratios."""
    same = result["runs"][0]["same_process"]
    assert same["iterations"] == 2
    assert 0 < same["float_step_s"] <= same["median_float_step_s"]
    assert 0 < same["csq_step_s"] <= same["median_csq_step_s"]
    assert same["csq_over_float_step_time"] == pytest.approx(same["csq_step_s"] / same["float_step_s"], abs=2e-3)
    ratio = same["median_csq_step_s"] / same["median_float_step_s"]
    assert same["median_csq_over_float_step_time"] == pytest.approx(ratio, abs=2e-3)


def test_a_negative_same_process_count_is_refused() -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--same-process", "-1"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1].endswith("--same-process: give a number of iterations >= 0, got -1")
