"""check-module's progress display: one step per layout tried, per size and channel count swept and per check
sent to the worker (counted from the JSON report and from what the worker was actually sent), drawn on stderr
only on a terminal, never with --json; standard output is byte-identical with and without it."""

from __future__ import annotations

import importlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from blockstitch.check.probes.base import Check, run_tasks
from blockstitch.check.worker import Worker
from blockstitch.cli import common, main

from progress_helpers import Recorder

MODULE = "import torch\n\n\nclass Tiny(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n" \
         "        self.conv = torch.nn.Conv2d(4, 4, 1)\n\n    def forward(self, x):\n        return self.conv(x)\n"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    (tmp_path / "tiny.py").write_text(MODULE)
    return f"{tmp_path / 'tiny.py'}:Tiny"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Check[Any, Any]]:
    """Every check whose tasks the worker was sent (the truth of 'checks run', taken at the process boundary)."""
    checks: list[Check[Any, Any]] = []
    stream = Worker.stream

    def recording(self: Worker, probe: Any, items: Any, seconds: float) -> Iterator[Any]:
        items = list(items)
        if probe is run_tasks:
            checks.extend(check for check, _ in items if check not in checks)
        return stream(self, probe, items, seconds)

    monkeypatch.setattr(Worker, "stream", recording)
    return checks


def _recording(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(importlib.import_module("blockstitch.cli.check_module"), "progress",
                        lambda machine=False: rec)
    return rec


@pytest.mark.parametrize("layout", [None, "b c h w"])
def test_one_step_per_layout_size_and_check_run(layout: str | None, tiny: str, sent: list[Check[Any, Any]],
                                                monkeypatch, capsys) -> None:
    rec = _recording(monkeypatch)
    argv = ["check-module", tiny, "--json", "--axis", "c=4"] + ([] if layout is None else ["--in", layout])
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    ran = [r for r in report["sweep"] if r["how"] != "not run"]
    squares = sum(1 for r in ran if r["size"][0] == r["size"][1])
    steps = rec.steps()
    want = [("layouts", 3, len(report["layouts"]))] if layout is None else []
    want += [("sizes", squares, squares)]
    assert steps[:len(want)] == want and rec.calls[-1] == ("done",)
    more = steps[len(want):-1]
    assert all(label == "more sizes" and total == n for label, total, n in more)
    assert sum(n for _, _, n in more) == len(ran) - squares  # the non-square follow-ups, each one step
    assert steps[-1] == ("checks", len(sent), len(sent))  # one step per check the worker was sent
    named = {c["name"] for c in report["checks"]}
    assert {c.name for c in sent} - named == {"count"}  # every check sent is in the report (count: its params)
    assert report["params"] == 4 * 4 + 4
    texts = [c[-1] for c in rec.calls if c[0] != "done" and c[-1] is not None]
    assert f"checks 1/{len(sent)}: {sent[0].name}" in texts and "sizes 5/" + f"{squares}: 5×5" in texts


def test_channel_sweep_steps_once_per_channel_count_run(monkeypatch) -> None:
    import blockstitch as bs

    rec = Recorder()
    report = bs.check_module("conv", axes={"c": 8}, progress=rec)
    channels = [s for s in rec.steps() if s[0] == "channels"]
    ran = [r for r in report.channel_sweep if r["how"] != "not run"]
    assert channels == [("channels", len(report.channel_sweep), len(ran))] and ran


def test_stdout_is_byte_identical_with_the_display_on_and_off_and_nothing_drawn_for_json(tiny: str, monkeypatch,
                                                                                        capsys) -> None:
    argv = ["check-module", tiny, "--in", "b c h w", "--axis", "c=4"]
    assert main(argv) == 0
    off = capsys.readouterr()
    assert "\x1b[" not in off.err and "1/" not in off.err  # captured streams are no terminals: nothing drawn
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    monkeypatch.setattr(common, "progress_console", lambda: console)
    assert main(argv) == 0
    on = capsys.readouterr()
    assert on.out == off.out and on.err == off.err
    drawn = ANSI.sub("", screen.getvalue())
    assert "sizes 1/" in drawn and "checks 1/" in drawn
    screen.truncate(0)
    assert main([*argv, "--json"]) == 0
    assert screen.getvalue() == "" and json.loads(capsys.readouterr().out)["ok"] is True
