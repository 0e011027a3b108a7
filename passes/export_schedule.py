"""``export-schedule{path=}``: build the mapping schedule of a mapped graph (docs/schedule.md).

Reads: ``graph.accelerator`` and every conv2d/linear layer's ``mapping`` and ``cost`` (run ``batchtile``
first). Writes: nothing on the graph; the schedule document goes to ``ctx.data["schedule"]`` and, when
``path`` is set, to that file (validated, atomic). torch is imported when the pass runs (buffer occupancy
comes from the cost model). Functional: the graph is returned unchanged.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen
from jaqc.ir.graph import LayerGraph

from .base import Pass, PassContext, PassResult


@frozen
class ExportSchedule(Pass):
    """Build (and optionally write) the BitFusion mapping schedule."""

    name: ClassVar[str] = "export-schedule"
    requires: ClassVar[tuple[str, ...]] = ("accelerator", "mappings")
    in_place: ClassVar[bool] = False
    path: str = ""

    def run(self, graph: LayerGraph, ctx: PassContext) -> PassResult:
        from jaqc.export.schedule import build_schedule, write_schedule

        schedule = build_schedule(graph)
        ctx.data["schedule"] = schedule
        if self.path:
            write_schedule(self.path, schedule)
        where = f" -> {self.path}" if self.path else ""
        ctx.log(f"export-schedule: {len(schedule['layers'])} layer(s){where}")
        return PassResult(graph, False)
