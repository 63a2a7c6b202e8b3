"""Sweep rows are keyed by what produced them: editing a target spec between two sweeps measures it again, the
unchanged targets' rows are reused, and the run says which."""

from __future__ import annotations

from pathlib import Path

import torch

from blockstitch.bench import BenchResult
from blockstitch.bench.digest import target_digest
from blockstitch.bench.sweep import SweepSpec, plan_sweep, read_results, run_sweep
from blockstitch.cli import main

NET = "name: tiny\ninput: [3, 8, 8]\nnodes:\n  - {{name: c, kind: conv, out_channels: {c}}}\n"


def _runner(calls: list[str], base: float = 0.0):
    def runner(target, shape, batch, **kw) -> BenchResult:
        calls.append(f"{Path(target).name}:{batch}")
        return BenchResult(target, "cpu", "cpu", kw["dtype"], batch, [3, 8, 8], kw["mode"], base + len(calls), 0.9,
                           1.1, 1000.0, None, None, 0.1, 0.5, torch.__version__)
    return runner


def test_an_edited_target_is_measured_again_and_the_rest_reused(tmp_path: Path) -> None:
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(NET.format(c=8))
    spec = SweepSpec(targets=[str(spec_file), "lenet5"], batch=[1, 2], budget_s=0.01)
    out = tmp_path / "r.jsonl"
    calls: list[str] = []
    first = run_sweep(spec, out, runner=_runner(calls))
    assert len(calls) == 4 and len({e["digest"] for e in first}) == 2
    calls.clear()
    assert run_sweep(spec, out, runner=_runner(calls)) == first and calls == []  # nothing changed: all reused
    spec_file.write_text(NET.format(c=16))  # the target edited between two sweeps
    plan = plan_sweep(spec, out)
    assert sorted(e["target"] for e in plan.reused) == ["lenet5", "lenet5"]
    assert [e["target"] for e in plan.stale] == [str(spec_file)] * 2
    second = run_sweep(spec, out, runner=_runner(calls, base=100.0))
    assert calls == ["tiny.yaml:1", "tiny.yaml:2"]  # only the edited target measured again
    old = {(e["target"], e["batch"]): e for e in first}
    for e in second:  # the new rows stand in place of the old ones; the others are the very rows written before
        if e["target"] == "lenet5":
            assert e == old[(e["target"], e["batch"])]
        else:
            assert e["digest"] != old[(e["target"], e["batch"])]["digest"] and e["median_ms"] > 100
    assert len(read_results(out)) == 4 and len(out.read_text().splitlines()) == 6  # appended, nothing rewritten
    spec_file.write_text(NET.format(c=16) + "# a comment only\n")  # the same content: still reused
    assert plan_sweep(spec, out).todo == []


def test_digest_follows_options_and_extends(tmp_path: Path) -> None:
    base, edit = tmp_path / "base.yaml", tmp_path / "edit.yaml"
    base.write_text(NET.format(c=8))
    edit.write_text(f"name: e\nextends: {base}\ninsert:\n  - {{after: c, block: {{kind: se}}}}\n")
    before = target_digest(str(edit))
    assert target_digest(str(edit)) == before and target_digest(str(edit), {"args": {"x": 1}}) != before
    base.write_text(NET.format(c=16))  # the base an edit extends changed: so did the edit's network
    assert target_digest(str(edit)) != before


def test_cli_says_which_rows_it_reused(tmp_path: Path, capsys) -> None:
    spec_file = tmp_path / "tiny.yaml"
    spec_file.write_text(NET.format(c=4))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("targets: [tiny.yaml]\nbatch: [1]\nbudget_s: 0.01\n")
    assert main(["sweep", str(sweep), "--no-plots"]) == 0
    assert "reused" not in capsys.readouterr().err
    assert main(["sweep", str(sweep), "--no-plots"]) == 0
    assert "reused 1 row (" in capsys.readouterr().err
    spec_file.write_text(NET.format(c=6))
    assert main(["sweep", str(sweep), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "measuring 1 row again (" in err and "reused" not in err
