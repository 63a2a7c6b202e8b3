"""Sweeps lose nothing: a corrupt results file keeps its good rows, its bad lines are reported by number and
left byte for byte, appends are whole lines, and a killed sweep resumes without duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from blockstitch.bench import BenchResult
from blockstitch.bench.sweep import SweepSpec, entry_key, run_sweep, scan_results
from blockstitch.cli import main


def _runner(calls: list[str]):
    def runner(target, shape, batch, **kw) -> BenchResult:
        calls.append(f"{target}:{batch}")
        return BenchResult(target, "cpu", "cpu", kw["dtype"], batch, [1, 8, 8], kw["mode"], 1.0, 0.9, 1.1, 1000.0,
                           None, None, 0.1, 0.5, torch.__version__)
    return runner


def test_corrupt_results_keep_good_rows_and_leave_bad_lines_alone(tmp_path: Path) -> None:
    spec = SweepSpec(targets=["a"], batch=[1, 2, 4, 8], budget_s=0.01)
    out = tmp_path / "results.jsonl"
    run_sweep(spec, out, runner=_runner([]))
    good = out.read_bytes().splitlines(keepends=True)
    junk = [b"\xff\xfe not utf-8\n", b"[1, 2, 3]\n", b'{"no_target": true}\n', b"{\"target\": \"a\", \"batch\": 8"]
    # rows 1 and 3 survive, row 2 is a duplicate of row 1, then junk; the batch-4 and batch-8 rows are lost
    corrupted = good[0] + junk[0] + good[0] + junk[1] + good[1] + junk[2] + junk[3]
    out.write_bytes(corrupted)
    found = scan_results(out)
    assert found.bad_lines == [2, 4, 6, 7] and found.duplicates == 1
    assert [e["batch"] for e in found.entries] == [1, 2]
    calls: list[str] = []
    entries = run_sweep(spec, out, runner=_runner(calls))
    assert calls == ["a:4", "a:8"]  # only what was lost is measured again
    assert sorted(e["batch"] for e in entries) == [1, 2, 4, 8]
    assert len({entry_key(e) for e in entries}) == len(entries)
    after = out.read_bytes()
    assert after.startswith(corrupted)  # nothing rewritten: the bad lines are still there, byte for byte
    tail = after[len(corrupted):].splitlines()
    assert tail[0] == b"" and all(json.loads(line)["target"] == "a" for line in tail[1:])  # half line closed


def test_a_value_listed_twice_is_measured_once(tmp_path: Path) -> None:
    calls: list[str] = []
    run_sweep(SweepSpec(targets=["a", "a"], batch=[2, 2], budget_s=0.01), tmp_path / "r.jsonl", runner=_runner(calls))
    assert calls == ["a:2"]


def test_cli_reports_bad_lines_by_number(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("targets: [lenet5]\nbatch: [1]\nbudget_s: 0.01\n")
    results = tmp_path / "sweep.jsonl"
    results.write_bytes(b"garbage\n")
    assert main(["sweep", str(sweep), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert f"{results}: line(s) 1 are not results" in err
    assert results.read_bytes().startswith(b"garbage\n")
    assert len(scan_results(results).entries) == 1
