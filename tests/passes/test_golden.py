"""Golden text dumps: tests/golden/<pass>/<case>.in.txt run through the pass must print <case>.out.txt.

Run ``pytest tests/passes/test_golden.py --update-golden`` to rewrite the .out.txt files after an
intended change, and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from jaqc.ir import parse, print_graph
from jaqc.passes import PassContext, make_pass

GOLDEN = Path(__file__).parents[1] / "golden"
CASES = sorted(GOLDEN.glob("*/*.in.txt"))


def _options(path: Path) -> dict[str, str]:
    first = path.read_text().splitlines()[0]
    if first.startswith("# options:"):
        return dict(kv.split("=") for kv in first[len("# options:") :].split() if kv)
    return {}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name[:-7]}" for c in CASES])
def test_golden(case: Path, update_golden: bool) -> None:
    p = make_pass(case.parent.name, _options(case))
    result = p.run(parse(case.read_text(), source=str(case)), PassContext())
    out = case.with_name(case.name.replace(".in.txt", ".out.txt"))
    text = f"# changed: {str(result.changed).lower()}\n" + print_graph(result.graph)
    if update_golden:
        out.write_text(text)
    assert out.exists(), f"{out} is missing: run pytest with --update-golden and review it"
    assert text == out.read_text()


def test_golden_cases_exist() -> None:
    assert {c.parent.name for c in CASES} >= {"fold-batchnorm", "annotate-quant"}
