"""Plots of a run (matplotlib, Agg backend): training curves, the derived architecture, hardware cost."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaqc.core.files import atomic_write_bytes


def _figure():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _figure().close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def _series(records: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["step"], r[key]) for r in records if r.get(key) is not None and "step" in r]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def plot_training(records: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    """Loss and accuracy curves (weight and architecture steps, validation when present)."""
    plt = _figure()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label in (("w_loss", "weight step CE"), ("a_ce", "arch step CE"), ("a_loss", "arch CE + λ·E_HW")):
        x, y = _series(records, key)
        if x:
            ax_loss.plot(x, y, label=label, linewidth=1)
    for key, label in (("w_acc", "weight batches"), ("a_acc", "arch batches"), ("val_acc", "validation")):
        x, y = _series(records, key)
        if x:
            ax_acc.plot(x, y, label=label, linewidth=1, marker="o" if key == "val_acc" else None)
    ax_loss.set(xlabel="step", ylabel="loss", title="loss")
    ax_acc.set(xlabel="step", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, y=1.04)
    return _save(fig, path)


def plot_hardware(
    records: Sequence[dict[str, Any]], path: Path, title: str, final: dict[str, Any] | None = None
) -> Path:
    """Expected energy, latency and area of the supernet over the search, and E_HW; ``final`` (the same keys)
    marks the final design, the accelerator of the run's outputs."""
    plt = _figure()
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    for ax, (key, label, scale) in zip(
        axes,
        (("expected_energy_nJ", "energy (µJ)", 1e-3), ("expected_latency_s", "latency (ms)", 1e3),
         ("expected_area_mm2", "area (mm²)", 1.0), ("e_hw", "E_HW (normalised)", 1.0)),
        strict=True,
    ):  # fmt: skip
        x, y = _series(records, key)
        ax.plot(x, [v * scale for v in y], linewidth=1)
        if final is not None and key in final:
            ax.plot([final["step"]], [final[key] * scale], marker="*", markersize=10, color="tab:red",
                    linestyle="none", label="final design")  # fmt: skip
            ax.legend(fontsize=7)
        ax.set(xlabel="step", title=label)
        ax.grid(alpha=0.3)
    fig.suptitle(title, y=1.04)
    return _save(fig, path)


def architecture_bars(
    ops: Sequence[str], bits: Sequence[tuple[int, int]], identity: Sequence[bool] | None = None
) -> tuple[list[int], list[int], list[str]]:
    """The weight-bit and activation-bit bar heights and the tick labels of :func:`plot_architecture`: an
    identity skip has no layers, so no bars."""
    none = list(identity) if identity is not None else [False] * len(ops)
    weight = [0 if n else b[0] for b, n in zip(bits, none, strict=True)]
    activation = [0 if n else b[1] for b, n in zip(bits, none, strict=True)]
    labels = [f"{i}\n{op}" + ("\n(identity)" if n else "") for i, (op, n) in enumerate(zip(ops, none, strict=True))]
    return weight, activation, labels


def plot_architecture(
    ops: Sequence[str],
    bits: Sequence[tuple[int, int]],
    path: Path,
    title: str,
    identity: Sequence[bool] | None = None,
) -> Path:
    """Per searchable block: the chosen op (label) and its weight / activation bits (bars); an identity skip
    (``identity``) has no layers, hence no bars."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(ops) + 2), 3.4))
    index = list(range(len(ops)))
    weight, activation, labels = architecture_bars(ops, bits, identity)
    ax.bar([i - 0.2 for i in index], weight, width=0.4, label="weight bits")
    ax.bar([i + 0.2 for i in index], activation, width=0.4, label="activation bits")
    ax.set_xticks(index, labels, fontsize=7)
    ax.set(ylabel="bits", yticks=[2, 4, 8], title=title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
