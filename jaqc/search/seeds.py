"""One search per seed, in sibling run directories, and their summary: mean ± standard deviation of every figure.

``jaqc search --seeds 0,1,2 --run-dir DIR`` (``--seeds 3`` is the same) runs the same search (preset, method,
options) once per seed into ``DIR/seed-0``, ``DIR/seed-1``, ... (each an ordinary run directory: it resumes,
retrains and exports on its own), then writes ``DIR/seeds.json`` and ``DIR/seeds.md``: per figure of the runs'
summaries (accuracies, latency, energy, area, EDAP, times; the retrained test accuracy where a seed was
retrained) the values per seed, their mean and their sample standard deviation. Run it again and it skips the
finished seeds, resumes an interrupted one and starts the missing ones; the summary is rewritten from what is on
disk.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaqc.core import JaqcError, atomic_write_text, read_json

from .rundir import RunDir, read_summary

#: The run summaries' figures the seeds' summary aggregates (those a run has; retrained ones under ``retrain``).
FIGURES: tuple[str, ...] = (
    "val_acc", "supernet_val_acc", "latency_ms", "energy_mJ", "area_mm2", "edap_mJ_ms_mm2", "share_of_2bit",
    "search_seconds",
)  # fmt: skip
RETRAINED_FIGURES: tuple[str, ...] = ("test_accuracy", "latency_ms", "energy_mJ", "area_mm2", "edap_mJ_ms_mm2")

#: The largest count ``--seeds N`` takes (a larger number is more likely a seed meant as ``--seed``).
MAX_SEED_COUNT = 100

SEEDS_FILE = "seeds.json"
SEEDS_TABLE = "seeds.md"


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """The seeds of ``flag``: ``"0,1,2"`` → ``[0, 1, 2]`` (distinct integers in 0..2^63-1), and a lone count
    ``"3"`` → ``[0, 1, 2]`` (one seed alone is ``--seed S``); an error naming ``flag`` and the bad entry
    otherwise."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) == 1:
        try:
            count = int(parts[0])
        except ValueError:
            raise JaqcError(
                f"{flag} {text!r}: give a count of seeds (3 runs seeds 0,1,2) or a list such as 0,1,2"
            ) from None
        if not 1 <= count <= MAX_SEED_COUNT:
            raise JaqcError(
                f"{flag} {text!r}: a count of seeds must be 1..{MAX_SEED_COUNT} (3 runs seeds 0,1,2); "
                "one seed alone is --seed S"
            )
        return list(range(count))
    seeds: list[int] = []
    for part in parts:
        try:
            seed = int(part)
        except ValueError:
            raise JaqcError(f"{flag} {text!r}: {part!r} is not an integer (e.g. {flag} 0,1,2)") from None
        if not 0 <= seed < 2**63:
            raise JaqcError(f"{flag} {text!r}: {seed} is outside 0..2^63-1")
        if seed in seeds:
            raise JaqcError(f"{flag} {text!r}: seed {seed} is given twice")
        seeds.append(seed)
    return seeds


def seed_dir(run_dir: str | Path, seed: int) -> Path:
    """The run directory of ``seed``: ``RUN_DIR/seed-<seed>``."""
    return Path(run_dir) / f"seed-{seed}"


def run_seeds(
    run_dir: str | Path, seeds: Sequence[int], start: Callable[[int, Path], Any], resume: Callable[[Path], Any]
) -> dict[str, Any]:
    """Run every seed's search (``start(seed, path)`` for a new one, ``resume(path)`` for an interrupted one; a
    finished one is skipped), then write and return the seeds' summary (:func:`summarize`)."""
    folder = Path(run_dir)
    if folder.exists() and not folder.is_dir():
        raise JaqcError(f"{folder}: exists and is not a directory; pick a new RUN_DIR")
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        path = seed_dir(folder, seed)
        run = RunDir(path)
        if run.finished:
            continue
        if run.config_path.is_file():
            resume(path)
        else:
            start(seed, path)
    return write_seeds_summary(folder, seeds)


def figure_stats(values: list[float]) -> dict[str, Any]:
    """``{"mean", "sd", "values"}`` of one figure over seeds (sample standard deviation; 0 for one value)."""
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": mean, "sd": sd, "values": values}


def summarize(run_dir: str | Path, seeds: Sequence[int]) -> dict[str, Any]:
    """Per figure: the values of the finished seeds (in ``seeds`` order), their mean and sample standard
    deviation (0 for one seed); the same for the retrained figures of the seeds that were retrained."""
    summaries = {seed: read_summary(seed_dir(run_dir, seed)) for seed in seeds}
    done = [seed for seed in seeds if summaries[seed] is not None]
    if not done:
        raise JaqcError(f"{run_dir}: none of the seeds {list(seeds)} has finished its search")
    figures: dict[str, Any] = {}
    for key in FIGURES:
        values = [summaries[s][key] for s in done if isinstance(summaries[s].get(key), (int, float))]  # type: ignore[index]
        if len(values) == len(done) and all(math.isfinite(v) for v in values):
            figures[key] = figure_stats([float(v) for v in values])
    retrained = {seed: read_summary(RunDir(seed_dir(run_dir, seed)).retrain_dir) for seed in done}
    with_retrain = [seed for seed in done if retrained[seed] is not None]
    after: dict[str, Any] = {}
    for key in RETRAINED_FIGURES if with_retrain else ():
        values = [retrained[s][key] for s in with_retrain if isinstance(retrained[s].get(key), (int, float))]  # type: ignore[index]
        if len(values) == len(with_retrain):
            after[key] = figure_stats([float(v) for v in values])
    first = summaries[done[0]]
    return {
        "method": first.get("method"),  # type: ignore[union-attr]
        "preset": first.get("preset"),  # type: ignore[union-attr]
        "seeds": list(seeds),
        "finished": done,
        "architectures": {str(s): summaries[s]["architecture"] for s in done},  # type: ignore[index]
        "figures": figures,
        "retrained_seeds": with_retrain,
        "retrained": after,
    }


def seeds_table(summary: dict[str, Any]) -> str:
    """The seeds' summary as a Markdown table: figure, mean ± sd, the values per seed."""
    lines = [
        f"# {summary['method']} on {summary['preset']}: seeds {', '.join(map(str, summary['finished']))}",
        "",
        "| figure | mean ± sd | per seed |",
        "|---|---|---|",
    ]
    for prefix, figures in (("", summary["figures"]), ("retrained ", summary["retrained"])):
        for key, stats in figures.items():
            values = ", ".join(f"{v:.4g}" for v in stats["values"])
            lines.append(f"| {prefix}{key} | {stats['mean']:.4g} ± {stats['sd']:.2g} | {values} |")
    return "\n".join(lines) + "\n"


def read_finished_seeds(run_dir: str | Path) -> list[int]:
    """The finished seeds ``RUN_DIR/seeds.json`` lists; an error naming the file when it is missing or damaged."""
    path = Path(run_dir) / SEEDS_FILE
    document = read_json(path, JaqcError)
    finished = document.get("finished") if isinstance(document, dict) else None
    if not isinstance(finished, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in finished):
        raise JaqcError(f"{path}: not a seeds summary (a JSON object with a list of integers 'finished')")
    return finished


def retrain_seeds(run_dir: str | Path, retrain: Callable[[Path], Any]) -> dict[str, Any]:
    """``retrain(path)`` every finished seed of ``run_dir`` not retrained yet (delete a seed's ``retrain/`` to
    redo it), then rewrite and return the seeds' summary."""
    seeds = read_finished_seeds(run_dir)
    for seed in seeds:
        if read_summary(RunDir(seed_dir(run_dir, seed)).retrain_dir) is None:
            retrain(seed_dir(run_dir, seed))
    return write_seeds_summary(run_dir, seeds)


def write_seeds_summary(run_dir: str | Path, seeds: Sequence[int]) -> dict[str, Any]:
    """Write ``seeds.json`` and ``seeds.md`` in ``run_dir`` (atomically) from the seeds' run directories."""
    summary = summarize(run_dir, seeds)
    atomic_write_text(Path(run_dir) / SEEDS_FILE, json.dumps(summary, indent=1) + "\n")
    atomic_write_text(Path(run_dir) / SEEDS_TABLE, seeds_table(summary))
    return summary
