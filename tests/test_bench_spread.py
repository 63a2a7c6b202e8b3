"""Every timing with its uncertainty (issue #26 item 2): bench, --per-block and sweep rows carry their samples and
the statistics of them, tables show the 95 % CI and scaled rates, wide spreads and loaded machines are said,
plots draw the intervals, --refresh-peaks rewrites the cache. Truths are computed another way: numpy's
percentiles, statistics.median, the samples the result itself carries, the FLOPs counted by the profile, fabricated
samples with a known spread. No test asserts an absolute time."""

from __future__ import annotations

import importlib
import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

import blockstitch as bs
from blockstitch import spread as spread_module
from blockstitch.bench.sweep import read_results
from blockstitch.bench.timing import Timing
from blockstitch.cli import main
from blockstitch.render import render_bench, render_sweep
from blockstitch.spread import Spread, scaled

bench_module = importlib.import_module("blockstitch.bench")  # the package (blockstitch.bench is also the function)
peaks_module = importlib.import_module("blockstitch.bench.peaks")
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
STATS = ("p10", "p90", "ci_low", "ci_high", "coverage", "median", "n")


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's load left out of the warnings (a test must not depend on how busy the machine is)."""
    monkeypatch.setattr(spread_module, "load_warning", lambda busy=0.75, own=1.0: None)
    monkeypatch.setattr(peaks_module, "load_warning", lambda busy=0.75, own=1.0: None)


def _fabricate(monkeypatch: pytest.MonkeyPatch, samples: list[float]) -> None:
    """Every measurement bench makes returns ``samples`` (ms), whatever the machine does."""
    monkeypatch.setattr(bench_module, "measure", lambda fn, dev, **kw: Timing(list(samples), 3))


def _check_row(row: dict) -> None:
    """The row's statistics equal those recomputed from the samples it carries, by Spread and by numpy."""
    samples = row["samples_ms"]
    truth = Spread.of(samples)
    assert row["n"] == len(samples) == truth.n >= 6
    for stat in STATS:
        assert row[f"latency_ms_{stat}"] == pytest.approx(getattr(truth, stat))
    assert row["median_ms"] == pytest.approx(statistics.median(samples))
    assert row["latency_ms_p10"] == pytest.approx(np.percentile(samples, 10))
    assert row["latency_ms_p90"] == pytest.approx(np.percentile(samples, 90))
    ordered = sorted(samples)
    assert row["latency_ms_ci_low"] in ordered and row["latency_ms_ci_high"] in ordered  # order statistics
    assert row["latency_ms_ci_low"] <= row["median_ms"] <= row["latency_ms_ci_high"]


def test_bench_json_statistics_are_those_of_its_own_samples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "lenet5", "--budget", "0.05", "--json", "--per-block"]) == 0
    data = json.loads(capsys.readouterr().out)
    _check_row(data)
    assert (data["p10_ms"], data["p90_ms"]) == (data["latency_ms_p10"], data["latency_ms_p90"])  # old names kept
    assert data["reps"] == data["n"]
    assert data["flops_per_s"] == pytest.approx(data["tflops"] * 1e12)
    flops = bs.profile("lenet5").flops
    assert data["flops_per_s"] == pytest.approx(flops / (data["median_ms"] / 1e3))
    assert isinstance(data["warnings"], list)
    for block in data["blocks"]:
        _check_row(block)


def test_a_tiny_block_shows_a_scaled_rate_never_zero_tflops(quiet: None) -> None:
    r = bs.bench("conv", (1, 4, 4), args={"out_channels": 1, "kernel_size": 1}, budget_s=0.02)
    console = Console(record=True, width=200)
    render_bench(r, console)
    text = console.export_text()
    assert "TFLOP/s" not in text and "0.000" not in text
    flops = bs.profile(bs.get_block("conv")(out_channels=1, kernel_size=1).build([(1, 1, 4, 4)]), (1, 4, 4)).flops
    assert scaled(flops / (r.median_ms / 1e3), "FLOP/s") in text  # the rate from the profile's own count
    s = Spread.of(r.samples_ms)
    assert f"n={s.n}" in text and "95 % CI" in text and "p10–p90" in text


def test_the_sweep_table_scales_rates_and_marks_rows_without_an_interval() -> None:
    rows = read_results(RESULTS / "gpu_sweep-h200.jsonl")  # written before the interval existed
    rows.append({**rows[0], "tflops": 2.5e-5, "latency_ms_ci_low": 4.0, "latency_ms_ci_high": 4.5,
                 "latency_ms_coverage": 0.96, "roofline_efficiency": 1.3e-5})
    console = Console(record=True, width=250)
    render_sweep(rows, console)
    lines = console.export_text().splitlines()
    assert scaled(rows[0]["tflops"] * 1e12, "FLOP/s") in lines[4]  # 1.89 TFLOP/s, from the row's own number
    assert "—" in lines[4]  # no interval in an old row: said, not invented
    last = next(line for line in lines if "25.0 MFLOP/s" in line)  # 2.5e-5 TFLOP/s, not "0.000"
    assert "4.00–4.50" in last and "0.0013%" in last  # a tiny efficiency keeps two figures, never "0.0%"


def test_a_wide_spread_is_warned_on_stderr_and_in_the_json(monkeypatch: pytest.MonkeyPatch, quiet: None,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    _fabricate(monkeypatch, [1.0, 1.0, 1.1, 1.0, 2.5, 3.0, 1.0, 3.2, 1.05, 2.9])  # p90/p10 ≈ 3
    assert main(["bench", "lenet5", "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    ratio = np.percentile(data["samples_ms"], 90) / np.percentile(data["samples_ms"], 10)
    assert ratio > 1.5
    assert "wide spread for lenet5" in err and f"{ratio:.1f}×" in err
    assert any("wide spread" in w for w in data["warnings"])


def test_a_narrow_spread_is_not_warned(monkeypatch: pytest.MonkeyPatch, quiet: None,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _fabricate(monkeypatch, [1.0, 1.01, 1.02, 1.0, 1.03, 1.01, 1.0, 1.02])
    assert main(["bench", "lenet5"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_loaded_machine_is_warned(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _fabricate(monkeypatch, [1.0, 1.01, 1.02, 1.0, 1.03, 1.01, 1.0, 1.02])
    monkeypatch.setattr(spread_module.os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    assert main(["bench", "lenet5", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "machine loaded: load average 64.0" in err
    assert any("machine loaded" in w for w in json.loads(out)["warnings"])


def test_sweep_rows_carry_the_interval_and_their_warnings(monkeypatch: pytest.MonkeyPatch, quiet: None,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fabricate(monkeypatch, [1.0, 1.0, 1.1, 1.0, 2.5, 3.0, 1.0, 3.2, 1.05, 2.9])
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("targets: [lenet5]\nbatch: [1, 2]\nbudget_s: 0.02\n")
    assert main(["sweep", str(sweep), "--no-plots"]) == 0
    out, err = capsys.readouterr()
    rows = read_results(tmp_path / "sweep.jsonl")
    for row in rows:
        _check_row(row)
        assert any("wide spread" in w for w in row["warnings"])
    assert "lenet5 latency (batch 1" in err and "lenet5 latency (batch 2" in err
    truth = Spread.of(rows[0]["samples_ms"])
    assert f"{truth.ci_low:.2f}–{truth.ci_high:.2f}" in out  # the table shows the interval


def test_plots_draw_each_confidence_interval(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from blockstitch.bench.sweep_plot import blocks_figure, latency_figure

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("targets: [lenet5]\nbatch: [1, 2]\nbudget_s: 0.02\nper_block: true\n")
    assert main(["sweep", str(sweep), "--plots", str(tmp_path / "plots")]) == 0
    rows = read_results(tmp_path / "sweep.jsonl")
    fig = latency_figure(rows)
    (bars,) = fig.axes[0].containers  # one series: lenet5 float32 infer
    segments = bars.lines[2][0].get_segments()  # one vertical segment per point: (x, low) → (x, high)
    truths = [Spread.of(r["samples_ms"]) for r in sorted(rows, key=lambda r: r["batch"])]
    assert [(s[0][0], s[0][1], s[1][1]) for s in segments] == [
        (pytest.approx(b), pytest.approx(t.ci_low), pytest.approx(t.ci_high)) for b, t in zip((1, 2), truths)]
    blocks = json.loads((tmp_path / "sweep.blocks.json").read_text())["lenet5"]
    fig = blocks_figure("lenet5", blocks)
    from matplotlib.container import ErrorbarContainer

    errorbar = next(c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer))
    segments = errorbar.lines[2][0].get_segments()  # horizontal: (low, y) → (high, y), slowest block on top
    truths = [Spread.of(b["samples_ms"]) for b in blocks][::-1]
    assert [(s[0][0], s[1][0]) for s in segments] == [
        (pytest.approx(t.ci_low), pytest.approx(t.ci_high)) for t in truths]


def test_refresh_peaks_measures_again_and_rewrites_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # where peaks.py keeps its cache
    figures = iter([1e9, 2e9, 3e9, 4e9, 5e9])
    measured: list[torch.dtype] = []

    def fake_measure(device: torch.device, dtype: torch.dtype) -> dict[str, float]:
        measured.append(dtype)
        value = next(figures)
        return {"flops": value, "bytes_per_s": value / 10}

    monkeypatch.setattr(peaks_module, "_measure", fake_measure)
    cache = tmp_path / "blockstitch" / "peaks.json"
    assert main(["bench", "lenet5", "--budget", "0.02"]) == 0  # measured once, then cached
    assert main(["bench", "lenet5", "--budget", "0.02"]) == 0
    assert len(measured) == 1 and [v["flops"] for v in json.loads(cache.read_text()).values()] == [1e9]
    capsys.readouterr()
    assert main(["bench", "lenet5", "--budget", "0.02", "--refresh-peaks"]) == 0
    assert len(measured) == 2 and [v["flops"] for v in json.loads(cache.read_text()).values()] == [2e9]
    err = capsys.readouterr().err
    assert "peaks re-measured" in err and "2.00 GFLOP/s (was 1.00 GFLOP/s)" in err and str(cache) in err
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("targets: [lenet5]\ndtype: [float32, bfloat16]\nbudget_s: 0.02\n")
    assert main(["sweep", str(sweep), "--no-plots", "--refresh-peaks"]) == 0
    assert measured[2:] == [torch.float32, torch.bfloat16]  # each dtype once, before the rows (then cached)
    values = json.loads(cache.read_text())
    assert sorted(v["flops"] for v in values.values()) == [3e9, 4e9]
    err = capsys.readouterr().err
    assert err.count("peaks re-measured") == 2 and "3.00 GFLOP/s (was 2.00 GFLOP/s)" in err
    assert "4.00 GFLOP/s (none cached)" in err


def test_fewer_samples_than_six_say_their_real_coverage() -> None:
    rows = [bench_module.BlockTime("a", "conv", [[1]], 2.0, 1.0, [1.0, 2.0, 3.0])]
    console = Console(record=True, width=200)
    from blockstitch.render import render_blocks

    render_blocks(rows, console)
    text = console.export_text()
    assert "1.00–3.00 (75 %)" in text  # 1 - 2·(1/2)³ = 0.75, the binomial coverage
    assert re.search(r"│\s+3\s+│", text)  # n


def test_peaks_measured_on_a_loaded_machine_are_said(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(peaks_module, "_measure", lambda device, dtype: {"flops": 1e9, "bytes_per_s": 1e8})
    monkeypatch.setattr(spread_module.os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    first = bs.bench("lenet5", budget_s=0.02)
    assert any("peaks were measured now, on a loaded machine" in w for w in first.warnings)
    again = bs.bench("lenet5", budget_s=0.02)  # read from the cache: nothing measured, nothing to say about peaks
    assert not any("peaks" in w for w in again.warnings)
    refreshed = bs.bench("lenet5", budget_s=0.02, refresh_peaks=True)
    assert refreshed.peaks_refreshed and "load average 64.0" in refreshed.peaks_refreshed
