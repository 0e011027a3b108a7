"""Plain-Python cost records of single rows, for reports, JSON output and the IR's LayerCost annotation."""

from __future__ import annotations

from typing import Any

from attrs import frozen

from jaqc.hw.model.cost_model import INNER_ORDER_NAMES, CostTensors

ACCESS_NAMES: tuple[str, ...] = (
    "wbuf_read",
    "wbuf_write",
    "ibuf_read",
    "ibuf_write",
    "obuf_read",
    "obuf_write",
    "dram_read",
    "dram_write",
)
ENERGY_NAMES: tuple[str, ...] = ("core", *ACCESS_NAMES, "sram", "dram", "total")
AREA_NAMES: tuple[str, ...] = ("core", "wbuf", "ibuf", "obuf", "total")


@frozen(kw_only=True)
class CostRecord:
    """The cost of one layer at one mapping on one accelerator (the reference-data units).

    cycles: clock cycles; access_bits: bits; energy_nj: nJ; area_mm2: mm^2; latency_s: s;
    edp: nJ*s; edap: nJ*s*mm^2.
    """

    feasible: bool
    compute_cycles: int
    stall_cycles: int
    total_cycles: int
    access_bits: dict[str, int]
    energy_nj: dict[str, float]
    area_mm2: dict[str, float]
    latency_s: float
    edp: float
    edap: float
    utilization: float
    inner_order: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict in the reference data's layout (cycles, access_bits, energy_nJ, ...)."""
        return {
            "feasible": self.feasible,
            "cycles": {
                "total": self.total_cycles,
                "stall": self.stall_cycles,
                "compute": self.compute_cycles,
            },
            "latency_s": self.latency_s,
            "access_bits": dict(self.access_bits),
            "energy_nJ": dict(self.energy_nj),
            "area_mm2": dict(self.area_mm2),
            "edp_nJ_s": self.edp,
            "edap_nJ_s_mm2": self.edap,
            "utilization": self.utilization,
            "inner_dataflow": self.inner_order,
        }

    def as_layer_cost(self) -> Any:
        """The IR's ``LayerCost`` annotation (compute cycles, stall cycles, energy in nJ)."""
        from jaqc.ir.types import LayerCost

        return LayerCost(
            compute_cycles=self.compute_cycles,
            stall_cycles=self.stall_cycles,
            energy_nJ=self.energy_nj["total"],
        )


def cost_records(costs: CostTensors) -> list[CostRecord]:
    """One record per row of a 1-D batch of costs."""
    rows = costs.total_cycles.reshape(-1).shape[0]

    def col(t) -> list[float]:
        return t.detach().to("cpu").expand(rows).tolist() if t.dim() == 0 else t.detach().to("cpu").tolist()

    cols = {
        "feasible": col(costs.feasible),
        "compute": col(costs.compute_cycles),
        "stall": col(costs.stall_cycles),
        "total": col(costs.total_cycles),
        "latency": col(costs.latency_s),
        "edp": col(costs.edp),
        "edap": col(costs.edap),
        "util": col(costs.utilization),
        "inner": col(costs.inner_order),
    }
    access = {n: col(getattr(costs, f"{n}_bits")) for n in ACCESS_NAMES}
    energy = {n: col(getattr(costs, f"energy_{n}")) for n in ENERGY_NAMES}
    area = {n: col(getattr(costs.area, n).expand_as(costs.total_cycles)) for n in AREA_NAMES}
    return [
        CostRecord(
            feasible=bool(cols["feasible"][i]),
            compute_cycles=int(cols["compute"][i]),
            stall_cycles=int(cols["stall"][i]),
            total_cycles=int(cols["total"][i]),
            access_bits={n: int(access[n][i]) for n in ACCESS_NAMES},
            energy_nj={n: float(energy[n][i]) for n in ENERGY_NAMES},
            area_mm2={n: float(area[n][i]) for n in AREA_NAMES},
            latency_s=float(cols["latency"][i]),
            edp=float(cols["edp"][i]),
            edap=float(cols["edap"][i]),
            utilization=float(cols["util"][i]),
            inner_order=INNER_ORDER_NAMES[int(cols["inner"][i])],
        )
        for i in range(rows)
    ]
