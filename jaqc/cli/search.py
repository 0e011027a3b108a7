"""``jaqc search``: the joint search (JAQ, or a baseline method) into a run directory, resumable."""

from __future__ import annotations

from pathlib import Path

import click

from jaqc.core import JaqcError

from .app import cli, console, data_option, device_options, hw_model_option, nonempty_path
from .render import print_run_summary


@cli.command("search")
@click.option(
    "--preset",
    default="tiny",
    show_default=True,
    help="tiny (digits), digits32 (32x32 digits, built in), cifar10, cifar100, imagenet.",
)
@data_option
@click.option(
    "--run-dir",
    default=None,
    help="Where to write the run (default runs/<preset>); must be new or empty.",
    callback=nonempty_path,
)
@click.option(
    "--resume",
    "resume",
    default=None,
    metavar="RUN_DIR",
    help="Continue an interrupted run exactly.",
    callback=nonempty_path,
)
@click.option(
    "--force",
    is_flag=True,
    help="With --resume of a finished run: redo its final phase (derivation, mapping, outputs) from the last "
    "checkpoint; the outputs equal the first ones but for the timings.",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Search epochs (preset default: 90 CIFAR, 45 ImageNet)."
)
@click.option("--lam", type=float, default=None, help="λ weighting the normalised hardware cost E_HW.")
@click.option("--lambda-e", type=float, default=None, help="λE of E_HW (energy).")
@click.option("--lambda-l", type=float, default=None, help="λL of E_HW (latency).")
@click.option("--lambda-a", type=float, default=None, help="λA of E_HW (area).")
@click.option(
    "--final-temperature",
    type=float,
    default=None,
    help="[jaq, autonba] Gumbel temperature at the last step (annealed step by step from T0 = 5; default 0.1).",
)
@click.option(
    "--warmup-fraction",
    type=float,
    default=None,
    help="[jaq, autonba] share of the steps that train the weights only, first (default 0.1).",
)
@click.option(
    "--passes",
    default=None,
    help="[jaq] pass pipeline run on the traced supernet before it is priced: passes that remove a choice layer's "
    "candidates or narrow its bits restrict that block (docs/search.md, 'Search passes').",
)
@click.option(
    "--space",
    default=None,
    metavar="SPEC",
    callback=nonempty_path,
    help="[jaq, autonba] your own search space instead of FBNet: 'module:attribute' or 'file.py:attribute', a "
    "jaqc.nn.space.SearchSpace subclass (docs/search.md, 'Your own search space').",
)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="Any integer in 0..2^63-1.")
@click.option(
    "--seeds",
    default=None,
    metavar="0,1,2",
    help="One search per seed (0,1,2, or a count: 3 is the same) into RUN_DIR/seed-N, then RUN_DIR/seeds.json and "
    "seeds.md: mean ± sd of every figure. Run it again to resume: finished seeds are skipped.",
)
@click.option(
    "--method",
    type=click.Choice(["jaq", "autonba", "haq", "hqnas"]),
    default="jaq",
    show_default=True,
    help="jaq | autonba (Auto-NBA) | haq (HAQ, bits of a fixed network) | hqnas (HQNAS). See docs/search.md.",
)
@click.option("--accelerator", default=None, help="[haq, hqnas] fixed accelerator: preset name or TOML/JSON file.")
@click.option(
    "--network",
    default=None,
    help="[haq] the fixed network: a run directory or an IR .json with weights.",
    callback=nonempty_path,
)
@click.option("--budget", type=float, default=None, help="[haq] resource budget, a fraction of the 8-bit design.")
@click.option("--budget-kind", type=click.Choice(["latency", "energy", "edap"]), default=None, help="[haq]")
@click.option("--episodes", type=click.IntRange(min=1), default=None, help="[haq] DDPG episodes (warm-up included).")
@click.option(
    "--lifelong",
    default=None,
    metavar="RUN_DIR",
    help="[hqnas] re-search from a previous hqnas run.",
    callback=nonempty_path,
)
@click.option(
    "--lifelong-epochs", type=click.IntRange(min=1), default=None, help="[hqnas] epochs of a --lifelong re-search."
)
@click.option(
    "--objective",
    type=click.Choice(["latency", "energy", "edap"]),
    default=None,
    help="[hqnas] what the hardware term log(X/X_ref) measures (default latency, HQNAS's).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="torch intra-op threads (1 is fastest for the small tensors of tiny on a 2-core CPU).",
)
@hw_model_option(None, "Default: deployment (a resumed run keeps its own).")
@device_options
def search_cmd(
    preset: str,
    data_root: str | None,
    run_dir: str | None,
    resume: str | None,
    epochs: int | None,
    lam: float | None,
    lambda_e: float | None,
    lambda_l: float | None,
    lambda_a: float | None,
    seed: int | None,
    method: str,
    accelerator: str | None,
    network: str | None,
    budget: float | None,
    budget_kind: str | None,
    episodes: int | None,
    lifelong: str | None,
    lifelong_epochs: int | None,
    objective: str | None,
    threads: int,
    hw_model: str | None,
    force: bool,
    passes: str | None,
    space: str | None,
    final_temperature: float | None,
    warmup_fraction: float | None,
    seeds: str | None,
    device: str | None,
    amp: str | None,
) -> None:
    """Jointly search architecture, bits and accelerator (JAQ, or a baseline method); write a run directory."""
    import torch

    torch.set_num_threads(threads)
    from jaqc.hw.generator.objective import HardwareWeights
    from jaqc.search.distributed import shutdown
    from jaqc.search.methods import resume_run, start_run
    from jaqc.search.presets import search_preset
    from jaqc.search.rundir import claimed_run

    options = _method_options(
        method, accelerator=accelerator, network=network, budget=budget, budget_kind=budget_kind,
        episodes=episodes, lifelong=lifelong, lifelong_epochs=lifelong_epochs, objective=objective,
    )  # fmt: skip
    if seeds is not None and (resume is not None or seed is not None or force):
        given = [flag for flag, value in (("--resume", resume), ("--seed", seed), ("--force", force or None)) if value]
        raise JaqcError(f"--seeds runs (and resumes) one search per seed; drop {', '.join(given)}")
    if resume is not None:
        own = (
            ("hw_model", hw_model), ("passes", passes), ("space", space), ("final_temperature", final_temperature),
            ("warmup_fraction", warmup_fraction), ("amp", amp),
        )  # fmt: skip
        extra = [name for name, value in own if value is not None]
        if options or extra:
            given = sorted([*options, *extra])
            raise JaqcError(f"--resume continues a run with its own options; drop {', '.join(given)}")

        from jaqc.search.rundir import RunDir

        if RunDir(resume).finished and not force:
            raise JaqcError(
                f"{resume}: the search finished already (summary.json); nothing to resume and nothing was changed "
                "(retrain or export it, or add --force to redo its final phase from the last checkpoint)"
            )
        run_path = resume
    elif force:
        raise JaqcError("--force applies to --resume (redo a finished run's final phase)")
    else:
        if passes is not None and method != "jaq":
            raise JaqcError(f"--passes applies to --method jaq, not {method}")
        if space is not None and method not in ("jaq", "autonba"):
            raise JaqcError(f"--space applies to --method jaq / autonba, not {method} (its network is FBNet's)")
        for flag, value in (("--final-temperature", final_temperature), ("--warmup-fraction", warmup_fraction)):
            if value is not None and method not in ("jaq", "autonba"):
                raise JaqcError(f"{flag} applies to --method jaq / autonba (Gumbel-softmax searches), not {method}")
        if space is not None:
            from jaqc.nn.space import resolve_space_spec

            space = resolve_space_spec(space)  # a file path made absolute: the recipe must work from anywhere
        given = (
            ("epochs", epochs), ("lam", lam), ("seed", seed), ("hw_model", hw_model), ("passes", passes),
            ("space", space), ("final_temperature", final_temperature), ("warmup_fraction", warmup_fraction),
            ("amp", amp),
        )  # fmt: skip
        overrides: dict = {k: v for k, v in given if v is not None}
        if any(v is not None for v in (lambda_e, lambda_l, lambda_a)):
            base = HardwareWeights()
            overrides["hw"] = HardwareWeights(
                energy=base.energy if lambda_e is None else lambda_e,
                latency=base.latency if lambda_l is None else lambda_l,
                area=base.area if lambda_a is None else lambda_a,
            )
        chosen = search_preset(preset, data_root, **overrides)
        recipe = {"preset": preset, "data_root": data_root, "overrides": _jsonable(overrides)}
        run_path = run_dir or f"runs/{preset}"
        if seeds is not None:
            _search_seeds(method, preset, data_root, overrides, options, seeds, run_path, device)
            return
    # a run that fails before its first checkpoint (bad data, a bad option found late) leaves nothing behind
    try:
        with claimed_run(run_path):
            if resume is not None:
                run = resume_run(resume, data_root, device)
            else:
                run = start_run(method, chosen, run_path, recipe=recipe, options=options, device=device)
            outcome = run.run()
    finally:
        shutdown()
    assert outcome is not None
    if getattr(run, "rank", 0) == 0:
        print_run_summary(outcome.summary, outcome.run_dir)


def _search_seeds(
    method: str,
    preset: str,
    data_root: str | None,
    overrides: dict,
    options: dict,
    seeds: str,
    run_path: str,  # type: ignore[type-arg]
    device: str | None = None,
) -> None:
    """``--seeds``: one search per seed in ``run_path/seed-N`` (finished ones skipped, interrupted ones resumed),
    then the seeds' summary, printed as a table."""
    from jaqc.search.distributed import shutdown
    from jaqc.search.methods import resume_run, start_run
    from jaqc.search.presets import search_preset
    from jaqc.search.rundir import claimed_run
    from jaqc.search.seeds import parse_seeds, run_seeds, seeds_table

    chosen_seeds = parse_seeds(seeds)

    def start(seed: int, path: Path) -> None:
        seeded = {**overrides, "seed": seed}
        recipe = {"preset": preset, "data_root": data_root, "overrides": _jsonable(seeded)}
        with claimed_run(path):
            chosen = search_preset(preset, data_root, **seeded)
            start_run(method, chosen, path, recipe=recipe, options=options, device=device).run()

    def resume(path: Path) -> None:
        with claimed_run(path):
            resume_run(path, data_root, device).run()

    try:
        summary = run_seeds(run_path, chosen_seeds, start, resume)
    finally:
        shutdown()
    console().print(seeds_table(summary), markup=False)
    console().print(
        f"seeds' summary: {Path(run_path) / 'seeds.json'} and seeds.md; each seed's run in {run_path}/seed-N"
    )


#: The method options of ``jaqc search`` and the methods that take them.
_METHOD_OPTIONS: dict[str, tuple[str, ...]] = {
    "accelerator": ("haq", "hqnas"),
    "network": ("haq",),
    "budget": ("haq",),
    "budget_kind": ("haq",),
    "episodes": ("haq",),
    "lifelong": ("hqnas",),
    "lifelong_epochs": ("hqnas",),
    "objective": ("hqnas",),
}


def _method_options(method: str, **given: object) -> dict[str, object]:
    """The method options that were given; an option the method does not take is an error."""
    options = {k: v for k, v in given.items() if v is not None}
    for key in options:
        if method not in _METHOD_OPTIONS[key]:
            flag = "--" + key.replace("_", "-")
            raise JaqcError(f"{flag} applies to --method {' / '.join(_METHOD_OPTIONS[key])}, not {method}")
    return options


def _jsonable(overrides: dict) -> dict:  # type: ignore[type-arg]
    import attrs

    return {k: attrs.asdict(v) if attrs.has(type(v)) else v for k, v in overrides.items()}
