"""The :class:`PassManager`: runs a pipeline with optional verification, printing and timing."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from attrs import define, field
from jaqc.ir.errors import VerifyError
from jaqc.ir.graph import LayerGraph
from jaqc.ir.printer import print_graph
from jaqc.ir.verify import verify

from jaqc.core import JaqcError

from .base import CONDITIONS, Pass, PassContext, PassError, PassResult

#: Conditions that exclude each other: a pass providing the key ends the value.
_EXCLUSIVE = {"supernet": "plain", "plain": "supernet"}


@define
class PassTiming:
    """Wall time of one pass run and whether it changed the graph."""

    name: str
    seconds: float
    changed: bool


@define
class PassManager:
    """Run ``passes`` in order over a graph.

    ``verify_each`` runs :func:`verify` after every pass; ``print_after`` names passes whose result is
    printed (``"*"`` for all) through ``printer``; ``time_passes`` records a :class:`PassTiming` per pass
    in ``timings``; ``check_functional`` asserts that passes declared functional left their input alone.
    ``fixed_point`` repeats the pipeline until no pass changes the graph, at most ``max_iterations`` times
    (a bounded loop: reaching the bound is an error).
    """

    passes: Sequence[Pass]
    verify_each: bool = False
    print_after: Sequence[str] = ()
    time_passes: bool = False
    check_functional: bool = False
    fixed_point: bool = False
    max_iterations: int = 10
    printer: Callable[[str], None] = print
    timings: list[PassTiming] = field(factory=list)

    def check(self, graph: LayerGraph) -> None:
        """Check, before running anything, that each pass gets what it requires: from the input graph, or from a
        pass before it that provides it. The error names the pass and the pass that would provide the condition."""
        from .registry import providers

        held = {name for name, (_, test) in CONDITIONS.items() if test(graph)}
        for index, p in enumerate(self.passes):
            for condition in p.requires:
                if condition not in CONDITIONS:
                    raise PassError(f"pass {p.spec()} requires an unknown condition {condition!r}")
                if condition not in held:
                    what = CONDITIONS[condition][0]
                    after = f" (after {self._names(index)})" if index else ""
                    names = providers(condition)
                    hint = f"; run {' or '.join(names)} before {p.name}" if names else ""
                    raise PassError(f"pass {p.name} requires {what}, which the graph{after} lacks{hint}")
            for condition in p.provides:
                held.add(condition)
                held.discard(_EXCLUSIVE.get(condition, ""))  # a plain output is no longer a supernet

    def run(self, graph: LayerGraph, ctx: PassContext | None = None) -> PassResult:
        """Run the pipeline (after :meth:`check`); returns the final graph and whether any pass changed it."""
        self.check(graph)
        ctx = ctx or PassContext()
        changed_any = False
        for _iteration in range(self.max_iterations if self.fixed_point else 1):
            changed_round = False
            for index, p in enumerate(self.passes):
                graph, changed = self._run_one(p, index, graph, ctx)
                changed_round |= changed
            changed_any |= changed_round
            if not (self.fixed_point and changed_round):
                return PassResult(graph, changed_any)
        raise PassError(
            f"pipeline {self._names(len(self.passes))} did not reach a fixed point in {self.max_iterations} iterations"
        )

    def _names(self, upto: int) -> str:
        return ",".join(p.spec() for p in self.passes[:upto]) or "(none)"

    def _run_one(self, p: Pass, index: int, graph: LayerGraph, ctx: PassContext) -> tuple[LayerGraph, bool]:
        before = print_graph(graph) if self.check_functional and not p.in_place else None
        start = time.perf_counter()
        try:
            result = p.run(graph, ctx)
        except JaqcError as exc:
            raise PassError(f"pass {p.spec()} failed (after {self._names(index)}): {exc}") from exc
        seconds = time.perf_counter() - start
        if not isinstance(result, PassResult):
            raise PassError(f"pass {p.spec()} returned {type(result).__name__}, not a PassResult")
        if before is not None and print_graph(graph) != before:
            raise PassError(f"pass {p.spec()} is declared functional but modified its input graph")
        if self.time_passes:
            self.timings.append(PassTiming(p.name, seconds, result.changed))
        if self.verify_each:
            try:
                verify(result.graph)
            except VerifyError as exc:
                raise PassError(
                    f"verification failed after pass {p.spec()} (after {self._names(index)}): {exc}"
                ) from exc
        if "*" in self.print_after or p.name in self.print_after:
            self.printer(f"// after {p.spec()}\n{print_graph(result.graph)}")
        ctx.log(f"{p.spec()}: {'changed' if result.changed else 'unchanged'} ({seconds * 1e3:.1f} ms)")
        return result.graph, result.changed
