"""Progress off a terminal: a line at every tenth of the work and at least every minute, with an estimate."""

from __future__ import annotations

import io

from jaqc.progress import Progress


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_every_tenth_with_elapsed_and_time_left() -> None:
    clock, stream = _Clock(), io.StringIO()
    with Progress("search", 20, enabled=None, stream=stream, clock=clock) as bar:
        assert bar.mode == "lines"  # pytest's stderr is not a terminal
        for _ in range(20):
            clock.now += 3.0
            bar.advance(loss=0.5, acc="97%")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "search: 20 steps"
    assert lines[1] == "search: 2/20 (10%), 0:06 elapsed, about 0:54 left  loss 0.5  acc 97%"
    assert len(lines) == 1 + 10 + 1  # the header, one line per tenth, the closing line
    assert lines[-2] == "search: 20/20 (100%), 1:00 elapsed  loss 0.5  acc 97%"
    assert lines[-1] == "search: done, 20 steps in 1:00"


def test_a_line_at_least_every_minute_and_resumed_counts() -> None:
    clock, stream = _Clock(), io.StringIO()
    with Progress("retrain", 1000, stream=stream, clock=clock, completed=500) as bar:
        clock.now += 30.0
        bar.advance()  # 501/1000: same tenth, 30 s: quiet
        clock.now += 31.0
        bar.advance()  # 61 s since the last line: a line
    lines = stream.getvalue().splitlines()
    assert lines[0] == "retrain: 1000 steps, resuming at 500"
    # 2 steps in 61 s since the resume: 498 left at 30.5 s each
    assert lines[1] == "retrain: 502/1000 (50%), 1:01 elapsed, about 4:13:09 left"
    assert lines[-1] == "retrain: done, 2 steps in 1:01"


def test_disabled_is_silent() -> None:
    stream = io.StringIO()
    with Progress("search", 5, enabled=False, stream=stream) as bar:
        bar.advance()
    assert stream.getvalue() == "" and bar.mode == "off"
