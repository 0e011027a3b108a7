"""``jaqc compare``: every method on one cost model, with a table and a Pareto plot."""

from __future__ import annotations

import click
from rich.table import Table

from jaqc.nn.config import CLIPPINGS

from .app import cli, console, data_option, device_option, hw_model_option, nonempty_path


@cli.command("compare")
@click.option("--preset", default="tiny", show_default=True, help="Search preset shared by every method.")
@data_option
@click.option(
    "--methods",
    default="jaq,autonba,haq,hqnas,uniform8,uniform4",
    show_default=True,
    help="Comma-separated: jaq, autonba, haq, hqnas, uniform8, uniform4.",
)
@click.option("--lambdas", default=None, help="λ values for jaq/autonba/hqnas, e.g. 0.01,0.1 (default: the preset's).")
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Search epochs of every method (default: the preset's)."
)
@click.option(
    "--retrain-epochs",
    type=click.IntRange(min=1),
    default=None,
    help="QAT epochs of every retraining (preset default).",
)
@click.option(
    "--retrain-init",
    type=click.Choice(["scratch", "supernet"]),
    default="scratch",
    show_default=True,
    help="Retrain every subnet from scratch (one seeded initialisation) or from its search's supernet weights.",
)
@click.option(
    "--retrain-clipping",
    type=click.Choice(CLIPPINGS),
    default="mse",
    show_default=True,
    help="Activation clipping of every retraining (jaqc retrain --clipping); mse keeps 2-bit activations trainable.",
)
@click.option("--episodes", type=click.IntRange(min=1), default=None, help="HAQ episodes (default: HAQ's).")
@click.option(
    "--haq-budget",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=None,
    help="HAQ's budget, a fraction of its 8-bit design (default: the fraction JAQ's subnet reached here).",
)
@click.option(
    "--haq-budget-kind",
    type=click.Choice(["latency", "energy", "edap"]),
    default="latency",
    show_default=True,
    help="What HAQ's budget limits.",
)
@click.option("--ablation/--no-ablation", default=True, show_default=True, help="Also run the Table 7 ablation.")
@click.option(
    "--ablation-seeds",
    default=None,
    help="Seeds of the ablation searches, e.g. 0,1,2, or a count: 3 (default: --seed).",
)
@click.option(
    "--ablation-variants",
    default=None,
    help="Table 7 variants to search, e.g. csq,naive (default: all: csq,csq-k1,csq-k5,channel0,naive,autonba).",
)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="Any integer in 0..2^63-1.")
@click.option(
    "--seeds",
    default=None,
    help="Run every method once per seed, e.g. 0,1,2, or a count: 3 (seeds 0,1,2): mean ± sd and the wins beyond "
    "the seeds' spread.",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    default="runs/compare",
    show_default=True,
    help="Output directory.",
    callback=nonempty_path,
)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch intra-op threads.")
@click.option(
    "--report-only",
    is_flag=True,
    help="Run nothing: write the report from the entries and ablation searches already finished in OUT (the rest "
    "left out, the report marked partial), e.g. after parts of one comparison ran on several machines.",
)
@hw_model_option()
@device_option
def compare_cmd(
    preset: str,
    data_root: str | None,
    methods: str,
    lambdas: str | None,
    epochs: int | None,
    retrain_epochs: int | None,
    retrain_init: str,
    retrain_clipping: str,
    episodes: int | None,
    haq_budget: float | None,
    haq_budget_kind: str,
    ablation: bool,
    ablation_seeds: str | None,
    ablation_variants: str | None,
    seed: int | None,
    seeds: str | None,
    out_dir: str,
    threads: int,
    report_only: bool,
    hw_model: str,
    device: str | None,
) -> None:
    """Compare search methods on one cost model: table, Pareto plot, Table 7 ablation (resumable)."""
    from pathlib import Path

    import torch

    torch.set_num_threads(threads)
    from jaqc.search.compare import (
        CompareSettings,
        Comparison,
        lambda_table,
        parse_ablation_variants,
        parse_lambdas,
        parse_methods,
        parse_seeds,
        percent,
        wins_against_all,
    )

    settings = CompareSettings(
        preset=preset, data_root=data_root, methods=parse_methods(methods), lambdas=parse_lambdas(lambdas),
        epochs=epochs, retrain_epochs=retrain_epochs, retrain_init=retrain_init, episodes=episodes,
        retrain_clipping=retrain_clipping,
        haq_budget=haq_budget, haq_budget_kind=haq_budget_kind,
        ablation=ablation, seed=seed,
        ablation_seeds=parse_seeds(ablation_seeds), seeds=parse_seeds(seeds, "--seeds"),
        ablation_variants=parse_ablation_variants(ablation_variants),
        overrides={"hw_model": hw_model}, device=device,
    )  # fmt: skip
    out = console()

    def log(message: str) -> None:
        out.print(f"[bold]compare[/bold] {message}")

    result = Comparison(out_dir, settings, log=log, finished_only=report_only).run()
    table = Table(title=f"jaqc compare ({preset}, {hw_model} hardware model)", title_justify="left")
    for col in ("run", "test acc", "latency ms", "energy mJ", "area mm²", "EDAP", "w/a bits", "search s"):
        table.add_column(col)
    for r in result["rows"]:
        table.add_row(
            r["label"], f"{r['test_accuracy']:.2%}", f"{r['latency_ms']:.4g}", f"{r['energy_mJ']:.4g}",
            f"{r['area_mm2']:.4g}", f"{r['edap_mJ_ms_mm2']:.4g}", f"{r['mean_w_bits']:.2f}/{r['mean_a_bits']:.2f}",
            f"{r['search_seconds']:.0f}",
        )  # fmt: skip
    out.print(table)
    if result["aggregate"]:
        spread = Table(title="over seeds: mean ± sd († wins against every other entry)", title_justify="left")
        for col in ("entry", "test acc %", "EDAP", "EDAP, designed accel.", "wins (acc / EDAP)"):
            spread.add_column(col)
        for a in result["aggregate"]:

            def cell(key: str, scale: float = 1.0, a: dict = a) -> str:
                mark = " †" if wins_against_all(a, key, result["aggregate"]) else ""
                return f"{scale * a[key]['mean']:.4g} ± {scale * a[key]['sd']:.2g}{mark}"

            wins = f"{', '.join(a['wins']['test_accuracy']) or '–'} / {', '.join(a['wins']['edap_mJ_ms_mm2']) or '–'}"
            spread.add_row(a["entry"], cell("test_accuracy", 100.0), cell("edap_mJ_ms_mm2"),
                           cell("codesigned_edap_mJ_ms_mm2"), wins)  # fmt: skip
        out.print(spread)
    if result["ablation"]:
        abl = Table(title="Table 7 ablation: share of blocks at 2 bits (λ = 0)", title_justify="left")
        for col in ("variant", "seeds", "blocks", "w at 2 bits", "a at 2 bits", "undecided w / a"):
            abl.add_column(col)
        for a in result["ablation"]:
            seeds = ",".join(str(x) for x in a["seeds"])

            def share(key: str, a: dict = a) -> str:
                return percent(a[key]) + (f" ± {percent(a[key + '_sd'])}" if len(a["seeds"]) > 1 else "")

            undecided = " / ".join(percent(a.get(key)) for key in ("weight_undecided", "activation_undecided"))
            abl.add_row(
                a["variant"], seeds, str(a["layers"]), share("weight_2bit"), share("activation_2bit"), undecided
            )
        out.print(abl)
    root = Path(out_dir)
    plots = [
        name
        for name, written in (
            ("pareto.png", True), ("pareto_seeds.png", bool(result["aggregate"])),
            ("lambda.png", bool(lambda_table(result))), ("ablation.png", bool(result["ablation"])),
        )
        if written
    ]  # fmt: skip
    out.print(f"wrote {', '.join(str(root / name) for name in ['compare.md', 'compare.json', *plots])}")
