"""check-module's time budget: a module whose forward is too slow for it stops the check there, with the seconds
measured per forward and the size; the command answers within the budget instead of running for minutes."""

from __future__ import annotations

import json
import re
import textwrap
import time
from pathlib import Path

import pytest
import torch
from bounds import bounded
from torch import nn

import blockstitch as bs
from blockstitch.check.time_budget import TimeBudget
from blockstitch.cli import main

NAP_S = 0.4


class Sleepy(nn.Module):
    """Every forward sleeps NAP_S seconds (a module doing far too much work per call)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(NAP_S)
        return x


def test_a_slow_forward_stops_the_check_and_names_its_seconds_and_size() -> None:
    with bounded(60):  # generous: the budget is 3 s; without one the sweep alone would sleep 29 × 0.4 s
        report = bs.check_module(Sleepy(), input="b c h w", axes={"c": 4}, channels=False, budget=3.0)
    slow = report.check("time budget")
    assert not report.ok and slow is not None and slow.status == "failed"
    ran = [r for r in report.sweep if r["how"] != "not run"]
    assert len(ran) == 2 < len(report.sweep)  # two slow forwards in a row, then nothing more
    found = report.too_slow
    assert found is not None and found["measured"] and found["size"] == ran[-1]["size"]
    assert found["seconds_per_forward"] >= NAP_S  # measured: at least the sleep in the forward
    at = "×".join(map(str, found["size"]))
    assert re.search(rf"too slow: \d+\.\d\d s per forward at {at} \(input 2×4×{at}", slow.message), slow.message
    skipped = {c.name: c.message for c in report.checks if c.status == "skipped"}
    assert {"sizes", "gradients", "train and eval, batch 1 and 2", "finite outputs"} <= set(skipped)
    assert all("too slow" in m for m in skipped.values()), skipped
    assert report.size_rule.simple is False and report.constraints == []  # no rule from two sizes


def test_a_module_that_is_not_slow_gets_no_time_finding() -> None:
    report = bs.check_module(nn.Conv2d(4, 4, 1), axes={"c": 4}, channels=False, budget=60.0)
    assert report.ok and report.too_slow is None and report.check("time budget") is None
    assert all(r["seconds"] is not None and r["seconds"] < 60 / 30 for r in report.sweep)  # every forward timed


def test_a_spent_budget_names_the_slowest_forward_seen() -> None:
    clock = TimeBudget(30.0)  # 1 s per forward at most
    assert not clock.observe({"seconds": 0.002, "size": [4, 4], "input": [2, 4, 4, 4], "how": "real"})
    assert not clock.observe({"seconds": 0.001, "size": [8, 8], "input": [2, 4, 8, 8], "how": "real"})
    assert clock.stopped() is None  # fast forwards, time left: nothing to say
    clock.deadline = time.monotonic() - 1  # as if the probes after them had spent the rest
    found = clock.stopped()
    assert found is not None and found.size == [4, 4] and found.seconds == 0.002


SLEEPY = f'''
import time
from torch import nn

class Sleepy(nn.Module):
    def forward(self, x):
        time.sleep({NAP_S})
        return x
'''


def test_cli_time_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sleepy.py"
    path.write_text(textwrap.dedent(SLEEPY))
    with bounded(60):  # layouts are tried too: the second slow forward stops the check there
        assert main(["check-module", f"{path}:Sleepy", "--time-budget", "3", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["too_slow"]["seconds_per_forward"] >= NAP_S and data["too_slow"]["budget_s"] == 3
    assert main(["check-module", f"{path}:Sleepy", "--time-budget", "3", "--in", "b c h w"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"not plug-and-play: too slow: \d+\.\d\d s per forward at \d+×\d+", out), out
    with pytest.raises(SystemExit) as usage:
        main(["check-module", f"{path}:Sleepy", "--time-budget", "0"])
    assert usage.value.code == 2
    assert "positive number of seconds" in capsys.readouterr().err
