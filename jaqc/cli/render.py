"""Tables several commands print: the per-layer mapping table (``jaqc map``, ``jaqc dump --mappings``), the
schedule table and a run's summary (``jaqc search``, ``jaqc retrain``)."""

from __future__ import annotations

from rich.table import Table

from .app import console


def accelerator_title(model: str, acc: dict, note: str) -> str:  # type: ignore[type-arg]
    """``MODEL on NAME: RxC PEs, W/I/O buffers ... KB, F MHz (NOTE)`` for an accelerator's JSON form."""
    return (
        f"{model} on {acc.get('name') or 'accelerator'}: {acc['pe_rows']}x{acc['pe_cols']} PEs, "
        f"W/I/O buffers {acc['wbuf_kb']}/{acc['ibuf_kb']}/{acc['obuf_kb']} KB, {acc['freq_mhz']:g} MHz ({note})"
    )


#: The per-layer columns the mapping tables of ``jaqc map`` and ``jaqc dump --mappings`` share (head, then tail).
LAYER_HEAD = [("layer", "left"), ("kind", "left"), ("bits", "left"), ("tile b/ow/oh/ic/oc", "left"),
               ("order", "left"), ("compute", "right"), ("stall", "right")]  # fmt: skip


def layer_cells(r: dict) -> list[str]:  # type: ignore[type-arg]
    """The shared leading cells of one row of :func:`jaqc.hw.mapping.report` output."""
    from jaqc.layer_summary import human

    tile = "/".join(str(v) for v in r["tile"].values())
    return [r["name"], r["kind"], r["bits"], tile, r["loop_order"], human(r["cycles"]["compute"]),
            human(r["cycles"]["stall"])]  # fmt: skip


def print_layer_table(title: str, tail: list[tuple[str, str]], rows: list[list[str]], totals: dict) -> None:  # type: ignore[type-arg]
    """A mapping table (the shared columns, then ``tail``) and the totals line under it."""
    table = Table(title=title, title_justify="left")
    for col, justify in LAYER_HEAD + tail:
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row)
    out = console()
    out.print(table)
    t = totals
    out.print(
        f"latency {t['latency_ms']:.4f} ms | energy {t['energy_mJ']:.4f} mJ | area {t['area_mm2']:.3f} mm² | "
        f"EDP {t['edp_mJ_ms']:.4g} mJ·ms | EDAP {t['edap_mJ_ms_mm2']:.4g} mJ·ms·mm² | {t['layers']} layers, "
        f"{t['cycles']:,} cycles"
    )


def print_schedule_table(source: str, schedule: dict) -> None:  # type: ignore[type-arg]
    from jaqc.export.schedule import schedule_hw_model
    from jaqc.hw.mapping.report import schedule_rows

    note = f"{schedule_hw_model(schedule)} model, schedule of {source}"
    title = accelerator_title(schedule["model"], schedule["accelerator"], note)
    tail = [("bound", "left"), ("energy µJ", "right"), ("ibuf/wbuf/obuf", "right")]
    rows = [
        [*layer_cells(r), r["bound"], f"{r['energy_nJ'] / 1e3:.2f}",
         "/".join(f"{r['occupancy'][b]:.1%}" for b in ("ibuf", "wbuf", "obuf"))]
        for r in schedule_rows(schedule)
    ]  # fmt: skip
    print_layer_table(title, tail, rows, schedule["totals"])


def print_run_summary(summary: dict, run_dir) -> None:  # type: ignore[no-untyped-def, type-arg]
    from jaqc.hw.mapping.report import dataflow_note

    out = console()
    arch = summary["architecture"]
    table = Table(title=f"derived subnet ({run_dir})", title_justify="left")
    if summary.get("method") == "haq":  # HAQ's bits are per layer of a fixed network
        for col in ("layer", "w bits", "a bits"):
            table.add_column(col)
        for name, (w, a) in zip(arch["ops"], arch["bits"], strict=True):
            table.add_row(name, str(w), str(a))
    else:
        margins = summary.get("margins")  # (older runs and other methods: not recorded)
        for col in ("block", "op", "w bits", "a bits", *(["margin op/w/a"] if margins else [])):
            table.add_column(col)
        identity = summary.get("identity_blocks") or [False] * len(arch["ops"])  # (older runs: not recorded)
        for i, (op, (w, a)) in enumerate(zip(arch["ops"], arch["bits"], strict=True)):
            row = [str(i), "skip (identity)", "–", "–"] if identity[i] else [str(i), op, str(w), str(a)]
            if margins:
                parts = [margins["alpha"][i]] + ([] if identity[i] else [margins["beta_w"][i], margins["beta_a"][i]])
                row.append("/".join(f"{m:.2f}" for m in parts))
            table.add_row(*row)
    out.print(table)
    for warning in summary.get("margin_warnings", []):
        out.print(f"warning: undecided choice: {warning}")
    for warning in summary.get("reward_warnings", []):  # HAQ
        out.print(f"warning: {warning}")
    acc = summary["accelerator"]
    out.print(
        f"accelerator: {acc['pe_rows']}x{acc['pe_cols']} PEs, W/I/O buffers {acc['wbuf_kb']}/{acc['ibuf_kb']}/"
        f"{acc['obuf_kb']} KB, {acc['dataflow']}"
    )
    note = dataflow_note(acc)
    if note:
        out.print(f"note: {note}")
    line = (
        f"latency {summary['latency_ms']:.4f} ms | energy {summary['energy_mJ']:.4f} mJ | "
        f"area {summary['area_mm2']:.3f} mm² | EDAP {summary['edap_mJ_ms_mm2']:.4g} mJ·ms·mm²"
    )
    if "test_accuracy" in summary:
        line = f"test accuracy {summary['test_accuracy']:.2%} | " + line
    out.print(line)
