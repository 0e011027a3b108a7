"""Keep a ``jaqc compare`` output's finished runs in a small folder, and put them back to resume from.

    python scripts/compare_record.py save OUT RECORD      # OUT: a jaqc compare -o directory
    python scripts/compare_record.py restore RECORD OUT

A comparison on ``digits32`` with three seeds takes longer than one sitting on a 2-core machine, and its run
directories hold checkpoints of tens of MB. ``save`` copies what ``jaqc compare`` reads back from a finished
entry, and nothing else, into ``RECORD`` (docs/results/ keeps these next to the figures they give):

* per run with a ``summary.json``: ``config.json``, ``summary.json``, ``architecture.json``,
  ``accelerator.json``, ``codesign.json``, and the retraining's ``retrain/summary.json`` and
  ``retrain/config.json`` when it finished; a JAQ run also keeps ``subnet.json`` without its weights (HAQ's
  budget in the same seed is the fraction of the 8-bit cost its subnet reached, computed when that HAQ run
  starts from the layers, bits and accelerator alone; the weights would make the record 1 MB a run);
* ``compare.md``, ``compare.json`` and the plots of the last report.

Unfinished runs are left out (a comparison restarts them). ``restore`` copies a record back into ``OUT``
without overwriting anything there; ``jaqc compare`` with the same command then reads those entries back and
runs the rest. Exits 2 with a one-line error on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: What ``jaqc compare`` reads back from a finished entry (relative to its run directory).
RUN_FILES = ("config.json", "summary.json", "architecture.json", "accelerator.json", "codesign.json")
RETRAIN_FILES = ("summary.json", "config.json")
REPORT_FILES = ("compare.md", "compare.json", "pareto.png", "pareto_seeds.png", "lambda.png", "ablation.png")


def _method(run: Path) -> str | None:
    from jaqc.core import JaqcError, read_json

    try:
        return read_json(run / "summary.json").get("method")
    except JaqcError as exc:
        raise SystemExit(f"error: {exc}") from None


def _copy(source: Path, target: Path, overwrite: bool) -> bool:
    from jaqc.core import atomic_write_bytes

    if not source.is_file() or (target.exists() and not overwrite):
        return False
    atomic_write_bytes(target, source.read_bytes())
    return True


def _copy_without_weights(source: Path, target: Path) -> None:
    from jaqc.ir import load_graph, save_graph

    from jaqc.core import JaqcError

    try:
        save_graph(load_graph(source), target, weights=False)
    except JaqcError as exc:
        raise SystemExit(f"error: {exc}") from None


def save(out: Path, record: Path) -> list[str]:
    """Copy the finished runs of ``out`` into ``record``; returns the labels kept."""
    runs = out / "runs"
    if not runs.is_dir():
        raise SystemExit(f"error: {out}: no runs/ folder; give the -o directory of a jaqc compare")
    kept = []
    for run in sorted(p for p in runs.iterdir() if (p / "summary.json").is_file()):
        target = record / "runs" / run.name
        for name in RUN_FILES:
            _copy(run / name, target / name, overwrite=True)
        if (run / "retrain" / "summary.json").is_file():
            for name in RETRAIN_FILES:
                _copy(run / "retrain" / name, target / "retrain" / name, overwrite=True)
        if _method(run) == "jaq" and (run / "subnet.json").is_file():
            _copy_without_weights(run / "subnet.json", target / "subnet.json")
        kept.append(run.name)
    for name in REPORT_FILES:
        _copy(out / name, record / name, overwrite=True)
    return kept


def restore(record: Path, out: Path) -> list[str]:
    """Copy ``record``'s runs into ``out`` (nothing there is overwritten); returns the labels restored."""
    runs = record / "runs"
    if not runs.is_dir():
        raise SystemExit(f"error: {record}: no runs/ folder; give a folder written by `save`")
    restored = []
    for run in sorted(p for p in runs.iterdir() if p.is_dir()):
        copied = [_copy(f, out / "runs" / run.name / f.relative_to(run), False) for f in run.rglob("*") if f.is_file()]
        if any(copied):
            restored.append(run.name)
    return restored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, first, second in (("save", "OUT", "RECORD"), ("restore", "RECORD", "OUT")):
        command = sub.add_parser(name)
        command.add_argument("source", metavar=first, type=Path)
        command.add_argument("target", metavar=second, type=Path)
    args = parser.parse_args(argv)
    try:
        labels = (save if args.command == "save" else restore)(args.source, args.target)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{args.command}: {len(labels)} run(s): {', '.join(labels) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
