"""The progress display: every long library call reports the right number of steps (counted another way: plan
steps, result fields, the combinations a sweep measures), the command line draws it on stderr only when both
streams are terminals, and standard output is byte-identical with and without it."""

from __future__ import annotations

import importlib
import io
import json
import re
from typing import Any

import pytest
import torch
from rich.console import Console
from torch import nn

import blockstitch as bs
from blockstitch.bench import BenchResult, bench_blocks
from blockstitch.bench.sweep import SweepSpec, run_sweep
from blockstitch.bench.timing import Timing
from blockstitch.cli import common, main
from blockstitch.progress import RichProgress, Silent, Steps, as_progress, labelled, track

from progress_helpers import Recorder


def _forced(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The command line's display forced on, drawn into a string (as on a terminal)."""
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    monkeypatch.setattr(common, "progress_console", lambda: console)
    return screen


def _recording(monkeypatch: pytest.MonkeyPatch, command: str) -> Recorder:
    """The display a command makes, replaced by a recorder (the command's own module binds ``progress``)."""
    rec = Recorder()
    monkeypatch.setattr(importlib.import_module(f"blockstitch.cli.{command}"), "progress", lambda machine=False: rec)
    return rec


def test_steps_and_track_count_each_item_once_and_not_a_failed_one() -> None:
    seen: list[tuple[int, int, str]] = []
    assert list(track(lambda d, n, w: seen.append((d, n, w)), "abc", str.upper)) == ["a", "b", "c"]
    assert seen == [(0, 3, "A (1/3)"), (1, 3, "B (2/3)"), (2, 3, "C (3/3)"), (3, 3, "C (3/3)")]
    rec = Recorder()
    with pytest.raises(RuntimeError), Steps(rec, 3) as steps:
        steps.next("one")
        steps.next("two")
        raise RuntimeError("the second step failed")
    assert rec.calls == [("start", 3, "one (1/3)"), ("advance", "two (2/3)"), ("done",)]  # the failed one not counted
    labelled(rec, "lenet5").start(None, "warm-up")
    assert rec.calls[-1] == ("start", None, "lenet5: warm-up")
    assert isinstance(as_progress(None), Silent) and as_progress(rec) is rec
    with pytest.raises(TypeError, match="start/advance/done"):
        as_progress(42)  # type: ignore[arg-type]


def test_per_block_advances_once_per_node_of_the_plan(monkeypatch) -> None:
    _deterministic_measure(monkeypatch)  # the steps, not the timings, are checked here
    rec = Recorder()
    rows = bench_blocks("lenet5", budget_s=0.005, progress=rec)
    names = [s.name for s in bs.plan("lenet5").steps]
    assert rec.tasks() == [(len(names), f"timing {names[0]} (1/{len(names)})", len(names))]
    assert len(rows) == len(names)
    assert [t for t in rec.texts() if "(" in t][:len(names)] == [f"timing {n} ({i}/{len(names)})"
                                                                 for i, n in enumerate(names, 1)]


def test_bench_reports_every_warm_up_call_and_every_repetition() -> None:
    rec = Recorder()
    r = bs.bench(nn.Linear(8, 8), (8,), batch=2, budget_s=0.02, roofline=False, progress=rec)
    (warm_total, warm_text, warm_n), (time_total, time_text, time_n) = rec.tasks()
    assert warm_total is None and time_total is None  # adaptive: no total known beforehand
    assert warm_n == r.warmup_reps and time_n == r.reps  # one step per call, counted by the result itself
    assert warm_text.startswith("Linear b2 float32: warm-up") and "timing" in time_text


def test_stitch_report_advances_once_per_insertion_point() -> None:
    from blockstitch.check.stitch_report import stitch_report
    from blockstitch.subject import subject

    factory, _ = subject("eca", accept={"block"}).factory({})
    rec = Recorder()
    at = ["conv1", "conv2"]
    report = stitch_report(factory, "lenet5", at, progress=rec)  # no timer: sizes only, on meta
    assert rec.tasks() == [(2, "stitching after conv1 (1/2)", 2)] and [r.at for r in report.rows] == at


def test_sweep_advances_once_per_combination_measured(tmp_path) -> None:
    def runner(target: str, shape: Any, batch: int, **kw: Any) -> BenchResult:
        return BenchResult(target, "cpu", "cpu", kw["dtype"], batch, [3, 8, 8], kw["mode"], 1.0, 0.9, 1.1, 1000.0,
                           None, None, 0.1, 0.5, torch.__version__)

    spec = SweepSpec(targets=["a", "b"], batch=[1, 2, 4], budget_s=0.01)
    rec = Recorder()
    entries = run_sweep(spec, tmp_path / "r.jsonl", rec, runner=runner)
    assert rec.tasks() == [(6, "measuring a b1 float32 infer (1/6)", 6)] and len(entries) == 6
    rec.calls.clear()
    run_sweep(spec, tmp_path / "r.jsonl", rec, runner=runner)  # all reused: nothing to step through
    assert rec.tasks() == []


def test_export_steps_trace_write_and_one_check_per_batch(tmp_path) -> None:
    rec = Recorder()
    report = bs.export(nn.Sequential(nn.Linear(4, 3)), tmp_path / "m.pt2", input_shape=(4,), progress=rec)
    assert rec.tasks() == [(2 + len(report.errors), "tracing Sequential with torch.export (1/4)", 4)]
    assert [t for t in rec.texts() if t.startswith("checking")] == [
        f"checking parity at batch {b} ({i}/4)" for i, b in enumerate(report.errors, 3)]


def _deterministic_measure(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench's timings replaced by fixed ones (still reporting each step), so that stdout can be compared."""
    bench_module = importlib.import_module("blockstitch.bench")  # the package (`blockstitch.bench` is the function)

    def measure(fn: Any, device: Any, budget_s: float = 2.0, min_reps: int = 5, max_reps: int = 1000,
                flush_l2: bool = False, progress: Any = None) -> Timing:
        shown = as_progress(progress)
        shown.start(None, "warm-up")
        for i in range(3):
            fn()
            shown.advance(f"warm-up ({i + 1} calls)")
        shown.start(None, "timing")
        for i in range(5):
            fn()
            shown.advance(f"timing ({i + 1} reps)")
        shown.done()
        return Timing([1.0, 1.2, 1.1, 1.3, 0.9], 3)

    monkeypatch.setattr(bench_module, "measure", measure)
    # the load-average warning names the load of the moment: two runs would differ on stderr by it alone
    for module in ("blockstitch.spread", "blockstitch.bench.peaks"):
        monkeypatch.setattr(importlib.import_module(module), "load_warning", lambda busy=0.75, own=1.0: None)


@pytest.mark.parametrize("argv", [
    ["bench", "lenet5", "--budget", "0.01", "--per-block"],
    ["bench", "lenet5", "--budget", "0.01", "--per-block", "--json"],
    ["graph", "lenet5", "--depth", "1"],
])
def test_stdout_is_byte_identical_with_the_display_on_and_off(argv: list[str], monkeypatch, capsys) -> None:
    _deterministic_measure(monkeypatch)
    assert main(argv) == 0
    off = capsys.readouterr()
    assert "(1/" not in off.err and "\x1b[" not in off.err  # captured streams are no terminals: nothing drawn
    screen = _forced(monkeypatch)
    assert main(argv) == 0
    on = capsys.readouterr()
    assert on.out == off.out and on.err == off.err
    drawn = screen.getvalue()
    if "--json" in argv:
        assert drawn == ""  # machine output: no display even on a terminal
    elif argv[0] == "bench":
        names = [s.name for s in bs.plan("lenet5").steps]
        assert "lenet5 b1 float32: warm-up" in drawn and f"timing {names[0]} (1/{len(names)})" in drawn
    else:
        assert "tracing lenet5 (1/2)" in drawn


@pytest.mark.parametrize("command, argv, steps", [
    ("bench", ["bench", "lenet5", "--budget", "0.01", "--per-block"], None),
    ("graph", ["graph", "lenet5"], [2]),
])
def test_each_command_hands_its_display_to_the_library(command: str, argv: list[str], steps: list[int] | None,
                                                       monkeypatch, capsys) -> None:
    _deterministic_measure(monkeypatch)
    rec = _recording(monkeypatch, command)
    assert main(argv) == 0
    if steps is None:  # bench: warm-up (3 calls), timing (5 reps), then one step per block of the plan
        steps = [3, 5, len(bs.plan("lenet5").steps)]
    assert [n for _, _, n in rec.tasks()] == steps


def test_nothing_is_drawn_on_a_console_that_is_no_terminal() -> None:
    screen = io.StringIO()
    with RichProgress(Console(file=screen, width=120)) as shown:
        for _ in track(shown, range(5), lambda i: f"step {i}"):
            pass
    assert screen.getvalue() == ""


@pytest.mark.parametrize("out_tty, err_tty, machine, shown", [
    (True, True, False, True), (False, True, False, False), (True, False, False, False), (True, True, True, False)])
def test_the_display_needs_both_streams_on_a_terminal_and_no_machine_output(out_tty: bool, err_tty: bool,
                                                                             machine: bool, shown: bool,
                                                                             monkeypatch) -> None:
    consoles = [Console(file=io.StringIO(), force_terminal=out_tty), Console(file=io.StringIO(), force_terminal=err_tty)]
    monkeypatch.setattr(common, "_consoles", consoles)
    display = common.progress(machine)
    assert isinstance(display, RichProgress if shown else Silent)
    if shown:
        assert isinstance(display, RichProgress) and display.console is consoles[1]  # stderr, never stdout


def test_the_display_draws_steps_and_leaves_nothing_behind() -> None:
    screen = io.StringIO()
    with RichProgress(Console(file=screen, force_terminal=True, width=120), refresh_s=0) as shown:
        for _ in track(shown, ["conv1", "fc1"], lambda n: f"timing {n}"):
            pass
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "timing conv1 (1/2)" in drawn and "timing fc1 (2/2)" in drawn
    text = screen.getvalue()
    erased = text.rfind("\x1b[2K")  # transient: the last line drawn is erased, the cursor shown again
    assert erased > text.rfind("timing fc1") and "\x1b[?25h" in text[erased:]
    assert re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text[erased:]).strip() == ""


def test_sweep_export_and_check_module_into_hand_their_display_to_the_library(tmp_path, monkeypatch,
                                                                              capsys) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("targets: [lenet5]\nbatch: [1, 2]\nbudget_s: 0.01\n")
    rec = _recording(monkeypatch, "sweep")
    assert main(["sweep", str(sweep), "--no-plots"]) == 0
    assert rec.tasks() == [(2, "measuring lenet5 b1 float32 infer (1/2)", 2)]  # one step per configuration

    rec = _recording(monkeypatch, "export")
    assert main(["export", "lenet5", "-o", str(tmp_path / "l.pt2")]) == 0
    assert rec.tasks() == [(4, "tracing lenet5 with torch.export (1/4)", 4)]  # trace, save, batches 1 and 3

    class Passed:  # check_module's own checks are not what is shown here: only the stitch report's steps
        ok = True

        def to_dict(self) -> dict[str, Any]:
            return {}

    monkeypatch.setattr(importlib.import_module("blockstitch.check"), "check_module", lambda *a, **k: Passed())
    rec = _recording(monkeypatch, "check_module")
    capsys.readouterr()
    assert main(["check-module", "eca", "--into", "lenet5", "--at", "conv1,conv2,pool2", "--reps", "1",
                 "--json"]) == 0
    assert rec.tasks() == [(3, "stitching after conv1 (1/3)", 3)]  # one step per insertion point
    rows = json.loads(capsys.readouterr().out)["stitch"]["rows"]
    assert [r["at"] for r in rows] == ["conv1", "conv2", "pool2"]
