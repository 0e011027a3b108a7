"""``jaqc compare``: argument parsing, the ablation measure, the Pareto front, the report, resumption."""

from __future__ import annotations

import json
import math
import re

import attrs
import pytest

from jaqc.cli import main
from jaqc.core import JaqcError
from jaqc.search.compare import (
    CompareSettings,
    Comparison,
    pareto_front,
    parse_ablation_variants,
    parse_lambdas,
    parse_methods,
    parse_seeds,
    render_markdown,
)


def test_parse_methods_and_lambdas() -> None:
    assert parse_methods(" jaq, haq ,uniform4") == ("jaq", "haq", "uniform4")
    assert parse_lambdas(None) == (None,)
    assert parse_lambdas("0,0.1, 1e-2") == (0.0, 0.1, 0.01)
    assert parse_seeds(None) is None and parse_seeds("0, 2") == (0, 2)
    assert parse_seeds("3", "--seeds") == (0, 1, 2)  # a count: `jaqc compare --seeds 3`


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse_methods("jaq,darts"), "--methods: unknown method 'darts'; choose from jaq, autonba"),
        (lambda: parse_methods("jaq,jaq"), "--methods: 'jaq,jaq' names a method twice"),
        (lambda: parse_methods(" , "), "--methods: give at least one method"),
        (lambda: parse_lambdas("0.1,x"), "--lambdas: 'x' is not a number"),
        (lambda: parse_lambdas("-1"), "--lambdas: λ must be finite and >= 0, got -1"),
        (lambda: parse_lambdas("1,1.0"), "--lambdas: '1,1.0' repeats a value"),
        (lambda: parse_seeds("0,a"), "--ablation-seeds '0,a': 'a' is not an integer"),
        (lambda: parse_seeds("1,1"), "--ablation-seeds '1,1': seed 1 is given twice"),
        (lambda: parse_seeds("0,x", "--seeds"), "--seeds '0,x': 'x' is not an integer"),
        (lambda: parse_seeds("0,-1", "--seeds"), "--seeds '0,-1': -1 is outside 0..2"),
        (lambda: parse_seeds("0", "--seeds"), "--seeds '0': a count of seeds must be 1..100"),
    ],
)
def test_bad_arguments_are_named(call, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(JaqcError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_pareto_front() -> None:
    points = [(3.0, 90.0), (1.0, 80.0), (2.0, 85.0), (2.5, 84.0), (4.0, 90.0), (1.0, 70.0)]
    # (2.5, 84) is beaten by (2, 85); (4, 90) by (3, 90); (1, 70) by (1, 80)
    assert pareto_front(points) == [1, 2, 0]


def test_markdown_has_the_rows_and_the_ablation() -> None:
    row = {
        "label": "jaq-lam0.1", "method": "jaq", "lambda": 0.1, "test_accuracy": 0.975, "latency_ms": 0.0123,
        "energy_mJ": 0.004, "area_mm2": 1.5, "edap_mJ_ms_mm2": 7.38e-5, "codesigned_edap_mJ_ms_mm2": 5e-5,
        "design_improvement": 1.0564, "search_seconds": 300.4,
        "mean_w_bits": 4.5, "mean_a_bits": 6.0, "accelerator": "8x16 ws W64/I64/O64 KB",
    }  # fmt: skip
    seed = [
        {"seed": 0, "layers": 4, "weight_2bit": 0.5, "activation_2bit": 0.0, "any_2bit": 0.5},
        {"seed": 1, "layers": 4, "weight_2bit": 0.0, "activation_2bit": 0.0, "any_2bit": 0.5},
    ]
    abl = {
        "variant": "JAQ (CSQ)", "seeds": [0, 1], "layers": 8, "weight_2bit": 0.25, "activation_2bit": 0.0,
        "any_2bit": 0.5, "per_seed": seed,
    }  # fmt: skip
    text = render_markdown({"settings": {"preset": "tiny"}, "rows": [row], "ablation": [abl]})
    assert (
        "| jaq-lam0.1 | jaq | 0.1 | 97.50% | 0.0123 | 0.004 | 1.5 | 7.38e-05 | 5e-05 | 1.056 | 4.50/6.00 | 300 |"
        in text
    )
    # a record written before the standard deviation was reported
    assert "| JAQ (CSQ) | 0,1 | 8 | 25% (50 / 0) | 0% (0 / 0) | 50% (50 / 50) |" in text
    assert "| 50% (50 / 50) | – / – |" in text  # no margins recorded
    abl.update(weight_2bit_sd=math.sqrt(2) / 4, activation_2bit_sd=0.0, any_2bit_sd=0.0)
    abl.update(weight_undecided=0.625, activation_undecided=0.0)
    text = render_markdown({"settings": {"preset": "tiny"}, "rows": [row], "ablation": [abl]})
    assert "| JAQ (CSQ) | 0,1 | 8 | 25 ± 35% (50 / 0) | 0 ± 0% (0 / 0) | 50 ± 0% (50 / 50) | 62% / 0% |" in text
    assert "Over λ" not in text  # one λ
    assert "not evidence about their method" not in text
    haq = {**row, "label": "haq-s0", "method": "haq", "lambda": None, "warnings": ["flat reward: all 3 ..."]}
    text = render_markdown({"settings": {"preset": "tiny"}, "rows": [row, haq], "ablation": []})
    assert "Searches whose result is not evidence about their method:\n\n- **haq-s0**: flat reward: all 3 ..." in text


def test_uniform_baseline_end_to_end_and_read_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = CompareSettings(
        methods=("uniform4",),
        retrain_epochs=1,
        ablation=False,
        overrides={"final_generator_steps": 2, "design_sweeps": 1},
    )
    logs: list[str] = []
    result = Comparison(tmp_path, settings, progress=False, log=logs.append).run()
    (row,) = result["rows"]
    run = tmp_path / "runs" / "uniform4"
    arch = json.loads((run / "architecture.json").read_text())
    assert set(arch["ops"]) == {"k3_e6"} and {tuple(b) for b in arch["bits"]} == {(4, 4)}
    assert row["mean_w_bits"] == row["mean_a_bits"] == 4.0
    retrained = json.loads((run / "retrain" / "summary.json").read_text())
    assert retrained["init"] == "scratch" and result["settings"]["retrain_init"] == "scratch"
    assert row["test_accuracy"] == retrained["test_accuracy"] and row["edap_mJ_ms_mm2"] == retrained["edap_mJ_ms_mm2"]
    codesign = json.loads((run / "codesign.json").read_text())
    assert row["codesigned_edap_mJ_ms_mm2"] == codesign["edap_mJ_ms_mm2"] > 0
    # the uniform baseline already sits on its designed accelerator: the same design gives the same accelerator
    assert codesign["accelerator"] == json.loads((run / "accelerator.json").read_text())
    assert row["codesigned_edap_mJ_ms_mm2"] == row["edap_mJ_ms_mm2"]
    # the generator's design before the coordinate search, and how much the search lowered E_HW
    assert row["generator_edap_mJ_ms_mm2"] == codesign["generator"]["edap_mJ_ms_mm2"] > 0
    assert row["design_improvement"] == codesign["improvement"] >= 1.0 and codesign["sweeps"] == 1
    recipe = json.loads((run / "config.json").read_text())["config"]["recipe"]
    assert recipe["overrides"] == {"final_generator_steps": 2, "design_sweeps": 1}
    for name in ("compare.md", "compare.json", "pareto.png"):
        assert (tmp_path / name).stat().st_size > 0
    # a second run reads everything back instead of redoing it
    logs.clear()
    again = Comparison(tmp_path, settings, progress=False, log=logs.append).run()
    assert again["rows"] == result["rows"]
    assert logs == [
        "entry 1/1: uniform4 (0:00:00 into this comparison)",
        f"uniform4: finished earlier, read back from {run}",
    ]
    assert again["settings"]["hw_model"] == "deployment"
    assert retrained["activation_clipping"] == "mse" == again["settings"]["retrain_clipping"]
    assert (
        "every subnet from scratch (the same seeded initialisation) with mse activation clipping"
        in (tmp_path / "compare.md").read_text()
    )
    assert "deployment hardware model" in (tmp_path / "compare.md").read_text()
    # finished runs read back from their summaries alone: a JAQ and a HAQ entry made of this run's files, without
    # subnets or checkpoints (scripts/compare_record.py keeps no more); a finished HAQ run's budget is in its
    # config, so the JAQ subnet it was computed from is not needed again
    kept = tmp_path / "kept"
    for label, method in (("jaq", "jaq"), ("haq", "haq")):
        for name in ("config.json", "summary.json", "codesign.json", "retrain/summary.json"):
            (kept / "runs" / label / name).parent.mkdir(parents=True, exist_ok=True)
            (kept / "runs" / label / name).write_text((run / name).read_text())
        summary = json.loads((run / "summary.json").read_text())
        (kept / "runs" / label / "summary.json").write_text(json.dumps({**summary, "method": method}))
    logs.clear()
    both = Comparison(kept, attrs.evolve(settings, methods=("jaq", "haq")), progress=False, log=logs.append).run()
    assert [r["label"] for r in both["rows"]] == ["jaq", "haq"]
    assert [{k: v for k, v in r.items() if k not in ("label", "method", "entry")} for r in both["rows"]] == [
        {k: v for k, v in row.items() if k not in ("label", "method", "entry")}
    ] * 2
    assert logs[1::2] == [
        f"{label}: finished earlier, read back from {kept / 'runs' / label}" for label in ("jaq", "haq")
    ]
    assert [re.sub(r"\(\d+:\d\d:\d\d ", "(T ", line) for line in logs[::2]] == [
        "entry 1/2: jaq (T into this comparison)",
        "entry 2/2: haq (T into this comparison)",
    ]
    # a retraining of another recipe is not read back: it is redone, and so is the design made for its subnet
    logs.clear()
    minmax = Comparison(tmp_path, attrs.evolve(settings, retrain_clipping="minmax"), progress=False, log=logs.append)
    redone = minmax.run()["rows"][0]
    assert "uniform4: retraining (from scratch, minmax activation clipping)" in logs
    assert "uniform4: designing an accelerator for its retrained subnet" in logs
    assert json.loads((run / "retrain" / "summary.json").read_text())["activation_clipping"] == "minmax"
    assert redone["codesigned_edap_mJ_ms_mm2"] == row["codesigned_edap_mJ_ms_mm2"]  # the same bits: the same design
    # runs computed with one hardware model are never mixed into a table of another
    simulator = attrs.evolve(settings, overrides={**settings.overrides, "hw_model": "simulator"})
    with pytest.raises(JaqcError, match="computed with the deployment hardware model, this comparison uses simulator"):
        Comparison(tmp_path, simulator, progress=False).run()


def test_cli_refuses_unknown_methods(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["compare", "--methods", "jaq,nas", "-o", str(tmp_path / "c")]) == 2
    assert "--methods: unknown method 'nas'" in capsys.readouterr().err
    taken = tmp_path / "file"
    taken.write_text("x")
    assert main(["compare", "--methods", "uniform4", "-o", str(taken)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: {taken}: exists and is not a directory; give -o a new or existing directory"
    )
    assert taken.read_text() == "x"


def test_ablation_pools_seeds_and_labels_runs(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each variant searches once per seed at λ = 0 in its quantization mode; shares pool over the seeds."""
    archs = {
        "ablation-csq": [[2, 8], [8, 8], [8, 8], [8, 8], [4, 4]],
        "ablation-csq-s3": [[2, 2], [2, 8], [8, 8], [8, 8], [4, 4]],
    }
    calls: list[tuple[str, str, dict]] = []

    def fake_search(self, label, method, overrides, options):  # type: ignore[no-untyped-def]
        calls.append((label, method, overrides))
        bits = archs.get(label, [[8, 8]] * 5)
        summary = {"architecture": {"ops": ["k3_e3", "k3_e3", "k3_e3", "k3_e3", "k3_e3"], "bits": bits}}
        if label.startswith("ablation-csq-s3"):  # one seed's margins: 2 of 5 w, 1 of 5 a undecided
            summary["margins"] = {"beta_w": [0.0, 0.01, 0.5, 0.5, 0.5], "beta_a": [0.5, 0.5, 0.5, 0.5, 0.02],
                                  "threshold": 0.05}  # fmt: skip
        elif label.startswith("ablation-csq"):
            summary["margins"] = {"beta_w": [0.5] * 5, "beta_a": [0.5] * 5, "threshold": 0.05}
        return summary

    monkeypatch.setattr(Comparison, "search", fake_search)
    settings = CompareSettings(methods=("jaq",), ablation_seeds=(0, 3))
    rows = Comparison(tmp_path, settings).ablation()
    got = [(c[0], c[1], c[2]["lam"], c[2].get("quant_mode"), c[2].get("csq_k_percent"), c[2]["seed"]) for c in calls]
    assert got == [
        ("ablation-csq", "jaq", 0.0, "csq", None, 0),
        ("ablation-csq-s3", "jaq", 0.0, "csq", None, 3),
        ("ablation-csq-k1", "jaq", 0.0, "csq", 1.0, 0),
        ("ablation-csq-k1-s3", "jaq", 0.0, "csq", 1.0, 3),
        ("ablation-csq-k5", "jaq", 0.0, "csq", 5.0, 0),
        ("ablation-csq-k5-s3", "jaq", 0.0, "csq", 5.0, 3),
        ("ablation-channel0", "jaq", 0.0, "channel0", None, 0),
        ("ablation-channel0-s3", "jaq", 0.0, "channel0", None, 3),
        ("ablation-naive", "jaq", 0.0, "naive", None, 0),
        ("ablation-naive-s3", "jaq", 0.0, "naive", None, 3),
        ("ablation-autonba", "autonba", 0.0, None, None, 0),
        ("ablation-autonba-s3", "autonba", 0.0, None, None, 3),
    ]
    csq = rows[0]
    assert (csq["variant"], csq["key"], csq["seeds"], csq["layers"]) == ("JAQ (CSQ)", "csq", [0, 3], 10)
    assert (csq["weight_2bit"], csq["activation_2bit"], csq["any_2bit"]) == (3 / 10, 1 / 10, 3 / 10)
    assert [x["weight_2bit"] for x in csq["per_seed"]] == [0.2, 0.4]
    assert csq["weight_2bit_sd"] == pytest.approx(math.sqrt(2) / 10) and csq["any_2bit_sd"] == pytest.approx(
        math.sqrt(2) / 10
    )
    assert csq["activation_2bit_sd"] == pytest.approx(math.sqrt(2) / 10)  # 0.2 and 0.0
    assert (csq["weight_undecided"], csq["activation_undecided"]) == (2 / 10, 1 / 10)
    assert [x["weight_undecided"] for x in csq["per_seed"]] == [0.0, 0.4]
    assert math.isnan(rows[-1]["weight_undecided"])  # ablation-autonba's fake summary has no margins
    assert rows[1]["weight_2bit"] == rows[-1]["any_2bit"] == rows[1]["weight_2bit_sd"] == 0.0
    assert [r["key"] for r in rows] == ["csq", "csq-k1", "csq-k5", "channel0", "naive", "autonba"]
    # a subset of the variants, in the table's order whatever the order asked; told after each one
    calls.clear()
    chosen = attrs.evolve(settings, ablation_variants=parse_ablation_variants("naive,csq-k1"), ablation_seeds=None)
    told: list[tuple[list[str], int]] = []
    rows = Comparison(tmp_path, chosen).ablation(lambda done, n: told.append(([d["key"] for d in done], n)))
    assert told == [(["csq-k1"], 2), (["csq-k1", "naive"], 2)]
    assert [r["variant"] for r in rows] == ["JAQ, CSQ at K = 1 %", "Naive multi-bit supernet (Eq. 5)"]
    assert [c[0] for c in calls] == ["ablation-csq-k1", "ablation-naive"]


def test_ablation_variants_and_csq_k_reach_the_preset() -> None:
    from jaqc.search.presets import search_preset

    assert parse_ablation_variants(None) is None
    with pytest.raises(JaqcError, match="unknown variant 'k3'; choose from csq, csq-k1, csq-k5, channel0, naive, "):
        parse_ablation_variants("csq,k3")
    with pytest.raises(JaqcError, match="--ablation-variants: 'csq,csq' names a variant twice"):
        parse_ablation_variants("csq,csq")
    quant = search_preset("tiny", quant_mode="csq", csq_k_percent=5.0).supernet.quant
    assert (quant.mode.value, quant.csq_k_percent) == ("csq", 5.0)
    with pytest.raises(JaqcError, match=r"preset tiny: .*csq_k_percent"):
        search_preset("tiny", csq_k_percent=0.0)


def _seed_row(entry: str, seed: int, acc: float, edap: float) -> dict:
    return {
        "label": f"{entry}-s{seed}", "entry": entry, "seed": seed, "method": entry.split("-")[0], "lambda": None,
        "test_accuracy": acc, "latency_ms": 1.0, "energy_mJ": edap, "area_mm2": 1.0, "edap_mJ_ms_mm2": edap,
        "codesigned_edap_mJ_ms_mm2": edap / 2, "mean_w_bits": 4.0, "mean_a_bits": 4.0, "search_seconds": 1.0,
        "accelerator": "8x8",
    }  # fmt: skip


def test_seeds_aggregate_to_mean_and_sd_and_a_win_needs_more_than_the_spread() -> None:
    from jaqc.search.compare import aggregate_seeds, beats

    rows = [
        _seed_row("jaq", 0, 0.90, 1.0), _seed_row("jaq", 1, 0.92, 1.2),
        _seed_row("haq", 0, 0.80, 3.0), _seed_row("haq", 1, 0.84, 3.4),
        _seed_row("hqnas", 0, 0.91, 2.0), _seed_row("hqnas", 1, 0.95, 2.2),
    ]  # fmt: skip
    agg = {a["entry"]: a for a in aggregate_seeds(rows)}
    jaq = agg["jaq"]
    assert jaq["seeds"] == [0, 1] and jaq["test_accuracy"]["values"] == [0.90, 0.92]
    assert jaq["test_accuracy"]["mean"] == pytest.approx(0.91) and jaq["test_accuracy"]["sd"] == pytest.approx(
        math.sqrt(2) * 0.01
    )
    # accuracy: jaq 0.91 ± 0.014 against hqnas 0.93 ± 0.028 overlap (no win either way); both beat haq 0.82 ± 0.028
    assert jaq["wins"]["test_accuracy"] == ["haq"] and agg["hqnas"]["wins"]["test_accuracy"] == ["haq"]
    # EDAP (lower is better): jaq 1.1 ± 0.14 beats hqnas 2.1 ± 0.14 and haq 3.2 ± 0.28
    assert jaq["wins"]["edap_mJ_ms_mm2"] == ["haq", "hqnas"] and agg["haq"]["wins"]["edap_mJ_ms_mm2"] == []
    # a gap equal to the two spreads together is not a win
    a = {"x": {"mean": 1.0, "sd": 0.1}}
    b = {"x": {"mean": 1.3, "sd": 0.2}}
    assert not beats(b, a, "x", True) and beats({"x": {"mean": 1.31, "sd": 0.2}}, a, "x", True)
    text = render_markdown({"settings": {"preset": "tiny", "seeds": [0, 1]}, "rows": rows, "ablation": [],
                            "aggregate": list(agg.values())})  # fmt: skip
    assert "## Over seeds 0,1: mean ± standard deviation" in text
    assert "| jaq | jaq | – | 91 ± 1.4 | 1 ± 0 | 1.1 ± 0.14 † | 1 ± 0 | 1.1 ± 0.14 † | 0.55 ± 0.071 † |" in text
    assert "- **jaq** beats haq, hqnas on EDAP" in text and "- **hqnas** beats haq on test accuracy" in text


def test_seeds_run_every_entry_once_per_seed_and_aggregate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = CompareSettings(
        methods=("uniform4",), seeds=(0, 1), retrain_epochs=1, ablation=False,
        overrides={"final_generator_steps": 2, "design_sweeps": 1},
    )  # fmt: skip
    seen: dict[str, dict] = {}

    def log(message: str) -> None:  # when the second entry starts, the first one's report is on disk
        if message.startswith("entry 2/2"):
            seen["json"] = json.loads((tmp_path / "compare.json").read_text())
            seen["md"] = {"text": (tmp_path / "compare.md").read_text()}

    result = Comparison(tmp_path, settings, progress=False, log=log).run()
    rows = result["rows"]
    assert seen["json"]["partial"] == {"entries_finished": 1, "entries": 2} and "partial" not in result
    assert seen["json"]["rows"] == rows[:1] and seen["json"]["aggregate"] == []
    assert "**Partial: 1 of 2 entries finished.**" in seen["md"]["text"]
    assert "Partial" not in (tmp_path / "compare.md").read_text()
    assert [(r["label"], r["entry"], r["seed"]) for r in rows] == [("uniform4-s0", "uniform4", 0),
                                                                     ("uniform4-s1", "uniform4", 1)]  # fmt: skip
    for row in rows:
        config = json.loads((tmp_path / "runs" / row["label"] / "config.json").read_text())
        assert config["config"]["recipe"]["overrides"]["seed"] == row["seed"]
    (entry,) = result["aggregate"]
    accuracies = [r["test_accuracy"] for r in rows]
    assert entry["entry"] == "uniform4" and entry["seeds"] == [0, 1] and entry["wins"]["test_accuracy"] == []
    assert entry["test_accuracy"]["values"] == accuracies
    assert entry["test_accuracy"]["mean"] == pytest.approx(sum(accuracies) / 2)
    assert result["settings"]["seeds"] == [0, 1] and (tmp_path / "pareto_seeds.png").stat().st_size > 0
    assert "## Over seeds 0,1: mean ± standard deviation" in (tmp_path / "compare.md").read_text()


def _lambda_row(method: str, lam: float | None, seed: int, acc: float, edap: float) -> dict:
    entry = method if lam is None else f"{method}-lam{lam:g}"
    return {**_seed_row(entry, seed, acc, edap), "method": method, "lambda": lam}


def test_lambda_table_is_table_4_and_waits_for_every_seed() -> None:
    from jaqc.search.compare import aggregate_seeds, lambda_table

    rows = [
        _lambda_row("jaq", 1.0, 0, 0.80, 0.5), _lambda_row("jaq", 0.01, 0, 0.90, 4.0),
        _lambda_row("autonba", 0.01, 0, 0.85, 3.0), _lambda_row("autonba", 1.0, 0, 0.70, 0.25),
        _lambda_row("jaq", 0.1, 0, 0.88, 1.0), _lambda_row("haq", None, 0, 0.87, 2.0),
        _lambda_row("hqnas", 0.1, 0, 0.9, 2.0),
    ]  # fmt: skip
    result = {"settings": {"preset": "tiny"}, "rows": rows, "ablation": []}
    table = lambda_table(result)
    # methods in their first row's order, λ ascending; HAQ (no λ) and HQNAS (one λ) have no row
    assert [(g["method"], [p["lambda"] for p in g["points"]]) for g in table] == [
        ("jaq", [0.01, 0.1, 1.0]), ("autonba", [0.01, 1.0])
    ]  # fmt: skip
    assert table[0]["points"][0]["test_accuracy"] == {"mean": 0.90, "sd": 0.0}
    assert table[0]["points"][0]["codesigned_edap_mJ_ms_mm2"] == {"mean": 2.0, "sd": 0.0}
    text = render_markdown(result)
    assert "## Over λ (the JAQ paper's Table 4)" in text
    assert "| jaq | 0.01 | 90 | 4 | 2 |\n| jaq | 0.1 | 88 | 1 | 0.5 |\n| jaq | 1 | 80 | 0.5 | 0.25 |" in text
    assert "| autonba | 1 | 70 | 0.25 | 0.125 |" in text
    # over seeds: the mean ± sd, and nothing while the seeds are partial
    seeded = rows[:4] + [_lambda_row(r["method"], r["lambda"], 1, r["test_accuracy"] - 0.02, 2 * r["edap_mJ_ms_mm2"])
                         for r in rows[:4]]  # fmt: skip
    settings = {"preset": "tiny", "seeds": [0, 1]}
    assert lambda_table({"settings": settings, "rows": seeded, "aggregate": []}) == []
    result = {"settings": settings, "rows": seeded, "aggregate": aggregate_seeds(seeded), "ablation": []}
    jaq, _ = lambda_table(result)
    assert jaq["points"][0]["seeds"] == [0, 1] and jaq["points"][0]["test_accuracy"]["mean"] == pytest.approx(0.89)
    assert "| autonba | 0.01 | 84 ± 1.4 | 4.5 ± 2.1 | 2.25 ± 1.1 |" in render_markdown(result)


def test_report_draws_table_4_and_7_and_marks_a_partial_ablation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = [_lambda_row("jaq", 0.01, 0, 0.90, 4.0), _lambda_row("jaq", 1.0, 0, 0.80, 0.5)]
    per_seed = [{"seed": 0, "layers": 4, "weight_2bit": 0.5, "activation_2bit": 0.25, "any_2bit": 0.5},
                {"seed": 1, "layers": 4, "weight_2bit": 0.0, "activation_2bit": 0.25, "any_2bit": 0.25}]  # fmt: skip
    abl = {"variant": "JAQ (CSQ)", "key": "csq", "seeds": [0, 1], "layers": 8, "weight_2bit": 0.25,
           "activation_2bit": 0.25, "any_2bit": 0.375, "per_seed": per_seed}  # fmt: skip
    comparison = Comparison(tmp_path, CompareSettings(methods=("jaq",), lambdas=(0.01, 1.0)))
    result = comparison.report(rows, [abl], total=2, ablation_progress=(1, 6))
    assert result["partial"] == {"entries_finished": 2, "entries": 2, "ablation_variants_finished": 1,
                                 "ablation_variants": 6}  # fmt: skip
    text = (tmp_path / "compare.md").read_text()
    assert "**Partial: 1 of 6 variants finished.**" in text and "**Partial: 2 of 2" not in text
    for name in ("lambda.png", "ablation.png", "pareto.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    result = comparison.report(rows, [abl], total=2)  # the last variant finished
    assert "partial" not in result and "Partial" not in (tmp_path / "compare.md").read_text()


def test_cli_prints_the_ablation_spread_and_names_every_plot(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rows = [_lambda_row("jaq", 0.01, None, 0.90, 4.0), _lambda_row("jaq", 1.0, None, 0.80, 0.5)]
    per_seed = [{"seed": s, "layers": 4, "weight_2bit": w, "activation_2bit": 0.0, "any_2bit": w}
                for s, w in ((0, 0.5), (1, 0.0))]  # fmt: skip
    abl = {"variant": "JAQ (CSQ)", "key": "csq", "seeds": [0, 1], "layers": 8, "weight_2bit": 0.25,
           "weight_2bit_sd": math.sqrt(2) / 4, "activation_2bit": 0.0, "activation_2bit_sd": 0.0, "any_2bit": 0.25,
           "any_2bit_sd": math.sqrt(2) / 4, "per_seed": per_seed}  # fmt: skip

    def fake_run(self):  # type: ignore[no-untyped-def]
        return {"settings": {"preset": "tiny"}, "rows": rows, "aggregate": [], "ablation": [abl]}

    monkeypatch.setattr(Comparison, "run", fake_run)
    out = tmp_path / "c"
    assert main(["compare", "--methods", "jaq", "--lambdas", "0.01,1", "-o", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "│ JAQ (CSQ) │ 0,1 │ 8 │ 25% ± 35% │ 0% ± 0% │ – / – │" in text
    abl.update(weight_undecided=0.5, activation_undecided=0.125)
    assert main(["compare", "--methods", "jaq", "--lambdas", "0.01,1", "-o", str(out)]) == 0
    assert "│ 0% ± 0% │ 50% / 12% │" in " ".join(capsys.readouterr().out.split())
    assert f"wrote {out / 'compare.md'}, {out / 'compare.json'}, {out / 'pareto.png'}, {out / 'lambda.png'}, " in text
    assert f"{out / 'ablation.png'}" in text and "pareto_seeds" not in text


def test_report_only_reports_what_finished_and_runs_nothing(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from jaqc.search import methods
    from jaqc.search.rundir import write_summary

    def never(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("--report-only started a search")

    monkeypatch.setattr(methods, "start_run", never)
    monkeypatch.setattr(methods, "resume_run", never)
    figures = {"latency_ms": 0.1, "energy_mJ": 0.2, "area_mm2": 3.0, "edap_mJ_ms_mm2": 0.06, "hw_model": "deployment"}
    accel = {"pe_rows": 8, "pe_cols": 8, "dataflow": "WS", "wbuf_kb": 64, "ibuf_kb": 64, "obuf_kb": 64}
    uniform4 = tmp_path / "runs" / "uniform4"
    arch = {"ops": ["k3_e6"] * 5, "bits": [[4, 4]] * 5}
    write_summary(uniform4, {"method": "uniform4", "architecture": arch, "accelerator": accel, **figures})
    write_summary(uniform4 / "retrain", {"test_accuracy": 0.9, "init": "scratch", "activation_clipping": "mse",
                                         **figures})  # fmt: skip
    codesign = {"accelerator": accel, "generator": {"edap_mJ_ms_mm2": 0.07}, "improvement": 1.1, **figures}
    (uniform4 / "codesign.json").write_text(json.dumps(codesign))
    write_summary(
        tmp_path / "runs" / "uniform8", {"method": "uniform8", "architecture": arch, **figures}
    )  # no retraining
    bits = {"ablation-csq": [[2, 8]] + [[8, 8]] * 4, "ablation-csq-s3": [[8, 8]] * 5, "ablation-naive": [[2, 2]] * 5}
    for label, pairs in bits.items():
        write_summary(tmp_path / "runs" / label, {"architecture": {"ops": ["k3_e3"] * 5, "bits": pairs}, **figures})
    settings = CompareSettings(
        methods=("uniform4", "uniform8"), ablation_seeds=(0, 3), ablation_variants=("csq", "naive"),
        overrides={"hw_model": "deployment"},
    )  # fmt: skip
    logged: list[str] = []
    result = Comparison(tmp_path, settings, log=logged.append, finished_only=True).run()
    assert [r["label"] for r in result["rows"]] == ["uniform4"] and result["rows"][0]["test_accuracy"] == 0.9
    assert "uniform8: not finished, left out of the report" in logged
    assert "ablation-naive-s3: not finished, left out of the report" in logged
    csq, naive = result["ablation"]
    assert (csq["seeds"], csq["weight_2bit"]) == ([0, 3], 0.1) and (naive["seeds"], naive["weight_2bit"]) == ([0], 1.0)
    assert result["partial"] == {"entries_finished": 1, "entries": 2, "ablation_variants_finished": 1,
                                 "ablation_variants": 2}  # fmt: skip
    text = (tmp_path / "compare.md").read_text()
    assert "**Partial: 1 of 2 entries finished.**" in text and "**Partial: 1 of 2 variants finished.**" in text
    assert "| Naive multi-bit supernet (Eq. 5) | 0 | 5 | 100% |" in text
