"""What a run prints when its console is a log, not a terminal: rich draws no live bar there."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from sgi.orchestrator.loop import Session
from sgi.orchestrator.progress import Reporter
from sgi.orchestrator.store import Store


def log_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, emoji=False), out


def test_a_long_bar_in_a_log_is_a_line_every_tenth_and_one_at_the_end():
    console, out = log_console()
    reporter = Reporter(console, mode="bars")
    with reporter.bar("round 0: student answers", total=95) as advance:
        for _ in range(95):
            advance(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10, lines  # 10%, 20%, ..., 90%, then the end
    assert lines[0].startswith("  round 0: student answers: 10/95 (10%)")
    assert lines[-1].startswith("  round 0: student answers: 95/95 (100%)")


def test_batches_larger_than_a_tenth_give_one_line_each():
    console, out = log_console()
    with Reporter(console, mode="bars").bar("labelling items", total=72) as advance:
        for _ in range(4):
            advance(16)
        advance(8)
    assert [line.split(",")[0].strip() for line in out.getvalue().splitlines()] == [
        "labelling items: 16/72 (22%)", "labelling items: 32/72 (44%)", "labelling items: 48/72 (66%)",
        "labelling items: 64/72 (88%)", "labelling items: 72/72 (100%)"]


def test_a_terminal_gets_the_live_bar_and_no_lines():
    out = io.StringIO()
    reporter = Reporter(Console(file=out, force_terminal=True, width=120), mode="bars")
    assert not reporter.lines
    reporter.started("round 0", "infer")
    assert out.getvalue() == ""


def test_the_stage_runner_says_when_a_stage_starts_and_ends_in_a_log(tmp_path):
    console, out = log_console()
    store = Store(tmp_path / "sgi.duckdb")
    session = SimpleNamespace(ctx=SimpleNamespace(store=store), reporter=Reporter(console, mode="bars"),
                              cfg=SimpleNamespace(run_dir=tmp_path))
    Session.stage(session, 0, "infer", lambda ctx: "12 answers")
    store.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "round 0 infer: started"
    assert lines[1].startswith("round 0 infer: 12 answers (")


def test_json_and_quiet_modes_print_no_lines():
    for mode in ("json", "quiet"):
        console, out = log_console()
        reporter = Reporter(console, mode=mode)
        with reporter.bar("x", total=10) as advance:
            advance(10)
        reporter.started("round 0", "infer")
        assert out.getvalue() == ""
