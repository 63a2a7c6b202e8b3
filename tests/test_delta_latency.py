"""Δlatency of `check-module --into` as a paired ratio with its interval, against truths computed another way: the
order statistics a published table names (n = 30: ranks 10 and 21), ratios fabricated by a fake clock (A/A and
20 % slower, under a round-to-round drift that swamps both), and a count of real forwards for `--no-latency`."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from blockstitch.check.stitch_report import stitch_report
from blockstitch.cli import main
from blockstitch.spread import paired_ratio

from ablate_helpers import TINY_BASE

NET: dict[str, Any] = TINY_BASE
ROUNDS = 30
JITTER = [1 + 0.002 * k for k in range(-15, 16) if k]
"""Per-round noise of a variant against its baseline: 30 values symmetric about 1 (−3 % … +3 %), median 1."""


def identity(shape: tuple[int, ...], layout: str, channels: int) -> nn.Module:
    """The factory of an A/A comparison: a block that changes nothing."""
    return nn.Identity()


def fake_clock(cost: Callable[[int], float], twin: bool = True
               ) -> Callable[[list[Callable[[], object]], int], list[list[float]]]:
    """A paired timer whose round ``r`` costs callable ``i`` drift[r] × cost(i) × jitter (baseline: no jitter):
    the drift (1× … 3×, a loaded machine) is shared within a round, as interleaving makes it. Each callable runs
    once per round, so the report's forwards really happen."""
    drift = [1 + 2 * ((7 * r) % ROUNDS) / ROUNDS for r in range(ROUNDS)]
    order = [(11 * r) % ROUNDS for r in range(ROUNDS)]  # JITTER shuffled, the same for every variant

    def timer(fns: list[Callable[[], object]], rounds: int) -> list[list[float]]:
        assert rounds == ROUNDS
        out: list[list[float]] = [[] for _ in fns]
        for r in range(rounds):
            for i, fn in enumerate(fns):
                fn()
                copy = twin and i == len(fns) - 1  # stitch_report's last callable: the baseline's second copy
                out[i].append(drift[r] * cost(0 if copy else i) * (JITTER[order[r]] if i else 1.0))
        return out

    return timer


def _table_ci(ratios: list[float]) -> tuple[float, float]:
    """The 95 % interval for a median of 30, from the published table: the 10th and the 21st order statistics."""
    ordered = sorted(ratios)
    return ordered[9], ordered[20]


def test_a_a_is_within_noise_and_20_percent_slower_is_not() -> None:
    aa = stitch_report(identity, NET, ["layer1", "layer2"], rounds=ROUNDS, timer=fake_clock(lambda i: 1.0))
    slow = stitch_report(identity, NET, ["layer1", "layer2"], rounds=ROUNDS,
                         timer=fake_clock(lambda i: 1.2 if i else 1.0))
    for row in aa.rows:
        assert row.latency is not None and row.latency.within_noise, row.latency_text
        assert row.latency.estimate == pytest.approx(1.0) and row.latency_text == "+0.0 % [-1.2, +1.2], within noise"
        assert (row.latency.ci_low, row.latency.ci_high) == pytest.approx(_table_ci(JITTER))
    for row in slow.rows:
        assert row.latency is not None and not row.latency.within_noise, row.latency_text
        assert row.latency.estimate == pytest.approx(1.2) and row.latency_text == "+20.0 % [+18.6, +21.4]"
        assert (row.latency.ci_low, row.latency.ci_high) == pytest.approx(_table_ci([1.2 * j for j in JITTER]))
    # the drift makes the baseline's own spread wide (p90 ≈ 2.5× p10); the pairs cancel it
    assert any("wide spread" in w for w in aa.warnings)


def test_the_reported_ratio_is_recomputed_from_the_samples_it_carries() -> None:
    report = stitch_report(identity, NET, ["layer1", "layer2"], rounds=ROUNDS,
                           timer=fake_clock(lambda i: 1.0 + 0.05 * i))
    data = json.loads(json.dumps(report.to_dict()))
    base = data["baseline"]["samples_ms"]
    assert data["rounds"] == ROUNDS and len(base) == ROUNDS
    assert data["baseline"]["latency_ms"] == statistics.median(base)
    for k, row in enumerate(data["rows"], start=1):
        ratios = [v / b for b, v in zip(base, row["samples_ms"])]
        assert row["latency_ratio_estimate"] == pytest.approx(statistics.median(ratios))
        assert (row["latency_ratio_ci_low"], row["latency_ratio_ci_high"]) == pytest.approx(_table_ci(ratios))
        assert row["latency_ratio_n"] == ROUNDS and row["latency_ratio_within_noise"] is False
        assert row["latency_pct"] == pytest.approx(5.0 * k)
        assert row["latency"].startswith(f"+{5.0 * k:.1f} % [")


class _RealForwards:
    """Counts module forwards on real (non-meta) tensors, every module of every network."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if any(isinstance(a, torch.Tensor) and a.device.type != "meta" for a in args):
            self.count += 1


def test_no_latency_runs_no_real_forward() -> None:
    counter = _RealForwards()
    handle = nn.modules.module.register_module_forward_pre_hook(counter)
    try:
        quick = stitch_report(identity, NET, ["layer1", "layer2"], rounds=ROUNDS, timer=None)
        silent = counter.count
        timed = stitch_report(identity, NET, ["layer1"], rounds=ROUNDS, timer=fake_clock(lambda i: 1.0))
    finally:
        handle.remove()
    assert silent == 0
    assert counter.count >= 2 * ROUNDS  # the control: a timed report does run both networks, once a round
    assert [r.params for r in quick.rows] == [0, 0] and quick.rows[0].macs == 0
    assert all(r.latency is None and r.samples_ms is None for r in quick.rows)
    data = quick.to_dict()
    assert data["baseline"]["latency_ms"] is None and data["rounds"] == 0
    assert all(r["latency_ratio_estimate"] is None and r["latency_ratio_within_noise"] is None
               and r["latency"] == "not timed" for r in data["rows"])
    assert timed.rows[0].latency is not None


def test_cli_no_latency_says_not_timed(tmp_path, capsys) -> None:
    net = tmp_path / "micro.json"
    net.write_text(json.dumps(NET))
    common = ["check-module", "eca", "--no-compile", "--no-export", "--into", str(net), "--at", "layer1,layer2",
              "--axis", "c=8", "--no-latency"]
    assert main([*common, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["stitch"]["rows"]
    assert [r["params"] for r in rows] == [3, 3]  # ECA's 1-D conv: k = 3 at 8 and 16 channels, no bias
    assert all(r["latency_ratio_estimate"] is None and r["latency"] == "not timed" for r in rows)
    assert main(common) == 0
    out = capsys.readouterr().out
    assert "latency not timed" in out and out.count("not timed") == 3


def test_ablate_writes_the_same_ratio_in_every_format() -> None:
    from blockstitch.ablate.measure import Latency, PlanRow
    from blockstitch.ablate.table import make_table, to_csv, to_json, to_latex, to_markdown

    clock = fake_clock(lambda i: (1.0, 1.0, 1.2)[i], twin=False)  # baseline, an A/A copy, a variant 20 % slower
    base, same, slow = clock([lambda: None] * 3, ROUNDS)
    lat = [Latency.of(name, base, own, "cpu", 1) for name, own in (("baseline", base), ("copy", same),
                                                                    ("slow", slow))]
    plans = [PlanRow("baseline", 100, 1000), PlanRow("copy", 100, 1000), PlanRow("slow", 150, 1500)]
    table = make_table("aa", "top1", plans, lat, [])
    md, csv_text, tex = to_markdown(table), to_csv(table), to_latex(table)
    data = json.loads(to_json(table))
    aa, slower = "+0.0 % [−1.2, +1.2], within noise", "+20.0 % [+18.6, +21.4]"
    assert aa in md and slower in md and md.count("within noise") == 1
    assert r"+0.0 \% [-1.2, +1.2], within noise" in tex and r"+20.0 \% [+18.6, +21.4]" in tex
    back = {r["variant"]: r for r in csv.DictReader(io.StringIO(csv_text))}
    assert (back["copy"]["latency_within_noise"], back["slow"]["latency_within_noise"]) == ("True", "False")
    assert float(back["slow"]["latency_ratio_low"]) == pytest.approx(_table_ci([1.2 * j for j in JITTER])[0])
    rows = {r["variant"]: r for r in data["rows"]}
    for name, within in (("copy", True), ("slow", False)):
        row = rows[name]
        ratios = [v / b for b, v in zip(rows["baseline"]["latency_samples_ms"], row["latency_samples_ms"])]
        assert row["latency_ratio"] == pytest.approx(statistics.median(ratios))
        assert (row["latency_ratio_low"], row["latency_ratio_high"]) == pytest.approx(_table_ci(ratios))
        assert row["latency_within_noise"] is within


def test_cli_times_with_the_bench_harness(tmp_path, capsys) -> None:
    net = tmp_path / "micro.json"
    net.write_text(json.dumps(NET))
    assert main(["check-module", "eca", "--no-compile", "--no-export", "--into", str(net), "--at", "layer1",
                 "--axis", "c=8", "--rounds", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["stitch"]
    (row,) = data["rows"]
    base = data["baseline"]["samples_ms"]
    ratios = sorted(v / b for b, v in zip(base, row["samples_ms"], strict=True))
    assert data["rounds"] == 3 and data["device"] == "cpu" and row["latency_ratio_n"] == 3
    # three rounds: the median of the ratios, the whole range as the interval, its 75 % coverage said in the cell
    assert (row["latency_ratio_estimate"], row["latency_ratio_ci_low"], row["latency_ratio_ci_high"]) == \
        pytest.approx((ratios[1], ratios[0], ratios[2]))
    assert "(75 % interval, n=3)" in row["latency"]


def test_a_second_copy_of_the_baseline_sets_the_noise_floor() -> None:
    """Two copies of one network read a few per cent apart on a quiet CPU (measured: −3.5 % … +2.5 % between
    copies of resnet18 at 64², 30 rounds): a row is within noise when its interval meets the copies' band."""
    def cost(i: int) -> float:  # baseline 1.0; its second copy (the timer's last callable) 1.04; rows 1.03, 1.10
        return {0: 1.0, 1: 1.03, 2: 1.10}[i]

    def timer(fns: list[Callable[[], object]], rounds: int) -> list[list[float]]:
        clock = fake_clock(lambda i: 1.04 if i == len(fns) - 1 else cost(i), twin=False)
        return clock(fns, rounds)

    report = stitch_report(identity, NET, ["layer1", "layer2"], rounds=ROUNDS, timer=timer)
    assert report.floor is not None and not report.floor.within_noise  # the copy alone is "different" from 1
    near, far = report.rows
    plain = paired_ratio(report.base_samples_ms, near.samples_ms)
    assert not plain.within_noise and near.latency.within_noise  # +3 % vs 1: shown; vs the copies' +4 %: noise
    assert (near.latency.noise_low, near.latency.noise_high) == (1.0, report.floor.ci_high)
    assert not far.latency.within_noise and far.latency.ci_low > report.floor.ci_high
    data = report.to_dict()
    assert data["noise_floor"]["samples_ms"] == report.twin_samples_ms
    assert data["rows"][0]["latency_ratio_within_noise"] is True


def test_the_load_warning_leaves_out_the_timings_own_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import blockstitch.spread as spread

    monkeypatch.setattr(spread.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(spread.os, "getloadavg", lambda: (2.0, 2.0, 2.0))  # a 2-thread timing on a quiet box
    assert spread.load_warning(own=2) is None
    assert spread.load_warning(own=0) is not None  # counting its own threads, it warned about itself
    monkeypatch.setattr(spread.os, "getloadavg", lambda: (9.0, 9.0, 9.0))  # other work
    assert spread.load_warning(own=2) is not None
