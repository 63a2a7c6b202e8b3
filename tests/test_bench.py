"""The benchmark method (never timed assertions): settling, adaptive repetitions, results, sweeps, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.bench import BenchResult, bench_blocks
from blockstitch.bench.sweep import SweepSpec, entry_key, read_results, run_sweep
from blockstitch.bench.timing import Timing, measure, settle
from blockstitch.cli import main

CPU = torch.device("cpu")


def test_settle_waits_for_stable_times(monkeypatch) -> None:
    from blockstitch.bench import timing

    times = iter([50.0, 10.0, 3.0, 2.0, 2.01, 2.02, 2.0, 2.0])
    monkeypatch.setattr(timing, "_timer", lambda device: lambda fn, flush: next(times))
    assert settle(lambda: None, CPU) == 6  # 50 (compile), 10, 3 … then three within 5%


def test_measure_is_adaptive_and_bounded() -> None:
    calls = []
    t = measure(lambda: calls.append(1), CPU, budget_s=0.05, min_reps=5, max_reps=200)
    assert 5 <= len(t.samples_ms) <= 200 and t.warmup_reps >= 1
    assert len(calls) == len(t.samples_ms) + t.warmup_reps


def test_quantiles() -> None:
    t = Timing([float(v) for v in range(1, 12)], 0)
    assert t.median_ms == 6 and t.quantile(0.1) == 2 and t.quantile(0.9) == 10


def test_bench_result_fields_and_arithmetic() -> None:
    r = bs.bench("conv", (8, 16, 16), batch=4, args={"out_channels": 8}, budget_s=0.05)
    data = r.to_dict()
    for key in ("target", "device", "device_name", "dtype", "batch", "input_shape", "mode", "median_ms", "p10_ms",
                "p90_ms", "throughput", "peak_allocated_bytes", "peak_reserved_bytes", "tflops",
                "roofline_efficiency", "torch_version"):
        assert key in data
    assert r.p10_ms <= r.median_ms <= r.p90_ms
    assert r.throughput == pytest.approx(4 / (r.median_ms / 1e3))
    flops = bs.profile(bs.get_block("conv")(out_channels=8).build([(1, 8, 16, 16)]), (8, 16, 16), batch=4).flops
    assert r.tflops == pytest.approx(flops / (r.median_ms / 1e3) / 1e12)
    assert 0 < r.roofline_efficiency
    assert r.peak_allocated_bytes is None  # no allocator statistics on CPU: said, not invented


def test_train_mode_steps_the_optimizer_on_a_copy() -> None:
    from contextlib import nullcontext

    from blockstitch.bench import _step

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(1, 3, 8, 8))
    before = [p.detach().clone() for p in model.parameters()]
    r = bs.bench(model, (3, 8, 8), batch=2, mode="train", budget_s=0.02)
    assert r.mode == "train" and r.median_ms > 0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the user's model is not trained
    step = _step(model, torch.randn(2, 3, 8, 8), "train", nullcontext)  # the timed step does train what it runs
    step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_train_mode_flops_are_the_profiles_train_flops() -> None:
    """One computation of training FLOPs: bench's train numerator is `Profile.train_flops`, which for a
    Linear → ReLU → Linear is forward + weight gradients + the second layer's input gradient (analytic)."""
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    r = bs.bench(model, (16,), batch=4, mode="train", budget_s=0.02, roofline=False)
    first, second = 2 * 4 * 16 * 8, 2 * 4 * 8 * 4  # forward FLOPs of each Linear at batch 4
    assert r.flops == bs.profile(model, (16,), batch=4, train=True).train_flops == 3 * (first + second) - first
    assert r.tflops == pytest.approx(r.flops / (r.median_ms / 1e3) / 1e12)
    infer = bs.bench(model, (16,), batch=4, budget_s=0.02, roofline=False)
    assert infer.flops == bs.profile(model, (16,), batch=4).flops == first + second


@pytest.mark.parametrize("options", [{"dtype": "bfloat16"}, {"dtype": "bfloat16", "amp": True},
                                     {"channels_last": True}, {"flush_l2": True}])
def test_options_run(options: dict) -> None:
    r = bs.bench("cbam", (16, 14, 14), batch=2, budget_s=0.02, **options)
    assert r.error is None and r.median_ms > 0 and r.options.get("channels_last") == options.get("channels_last", False)


def test_cuda_only_options_are_refused_on_cpu() -> None:
    with pytest.raises(bs.SpecError, match="CUDA graphs need a CUDA device"):
        bs.bench("cbam", (16, 14, 14), cuda_graphs=True)
    with pytest.raises(bs.SpecError, match="infer only"):
        bs.bench("cbam", (16, 14, 14), cuda_graphs=True, mode="train")
    if not torch.cuda.is_available():
        with pytest.raises(bs.SpecError, match="no CUDA device"):
            bs.bench("cbam", (16, 14, 14), device="cuda")


def test_out_of_memory_is_a_result() -> None:
    class Hungry(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.is_meta:  # counting on meta allocates nothing, so it cannot run out
                return x
            raise RuntimeError("CUDA out of memory. Tried to allocate 80.00 GiB")

    r = bs.bench(Hungry(), (3, 8, 8), batch=1024, budget_s=0.01, roofline=False)
    assert r.error == "out of memory" and r.median_ms is None


def test_per_block_is_sorted() -> None:
    rows = bench_blocks("lenet5", budget_s=0.01)
    assert [r.median_ms for r in rows] == sorted((r.median_ms for r in rows), reverse=True)
    assert {r.name for r in rows} == {s.name for s in bs.plan("lenet5").steps}
    assert sum(r.share for r in rows) == pytest.approx(1.0)


def _fake_runner(calls: list[str], fail_on: int | None = None):
    def runner(target, shape, batch, **kw) -> BenchResult:
        calls.append(f"{target}:{batch}")
        if batch == fail_on:
            raise RuntimeError("CUDA out of memory")  # a runner failure must not stop the sweep
        return BenchResult(target, "cpu", "cpu", kw["dtype"], batch, [3, 8, 8], kw["mode"], 1.0 * batch, 0.9, 1.1,
                           1000.0, None, None, 0.1, 0.5, torch.__version__)
    return runner


def test_sweep_appends_resumes_and_survives_failures(tmp_path: Path) -> None:
    spec = SweepSpec(targets=["a", "b"], batch=[1, 2, 4], dtype=["float32"], budget_s=0.01)
    out = tmp_path / "results.jsonl"
    calls: list[str] = []
    entries = run_sweep(spec, out, runner=_fake_runner(calls, fail_on=4))
    assert len(calls) == 6 and len(entries) == 6
    assert sum(1 for e in entries if e.get("error")) == 2  # both batch-4 entries, recorded
    assert all(e["batch"] == 4 and e["dtype"] == "float32" for e in entries if e.get("error"))
    # a sweep killed mid-write: drop the last two entries and leave half a line behind
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:4]) + "\n" + lines[4][:20])
    calls.clear()
    entries = run_sweep(spec, out, runner=_fake_runner(calls))
    assert calls == ["b:2", "b:4"]  # only what was lost is measured again
    assert len({entry_key(e) for e in entries}) == 6


def test_sweep_cli_end_to_end_with_plots(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("targets: [lenet5]\nbatch: [1, 4]\nbudget_s: 0.02\nper_block: true\n")
    assert main(["sweep", str(sweep), "--plots", str(tmp_path / "plots")]) == 0
    entries = read_results(tmp_path / "sweep.jsonl")
    assert [e["batch"] for e in entries] == [1, 4] and all(e["median_ms"] > 0 for e in entries)
    assert (tmp_path / "plots" / "latency_vs_batch.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "blocks_lenet5.png").stat().st_size > 1000
    assert "lenet5" in capsys.readouterr().out


def test_sweep_table_shows_the_options_and_inputs_that_vary(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("targets: [cbam]\ninput: [[8, 6, 6], [8, 5, 7]]\nchannels_last: [false, true]\n"
                     "budget_s: 0.02\n")
    assert main(["sweep", str(sweep), "--no-plots"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "cbam" in line]
    assert len(rows) == 4 and sum("channels_last" in r for r in rows) == 2
    assert sum("8×5×7" in r for r in rows) == 2  # without the columns, rows that differ would look the same


def test_bad_sweep_file_is_located(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("targets: [lenet5]\nbatchs: [1]\n")
    assert main(["sweep", str(sweep)]) == 2
    assert f"{sweep}:2" in capsys.readouterr().err


def test_bench_cli_json(capsys) -> None:
    assert main(["bench", "lenet5", "--batch", "2", "--budget", "0.05", "--json", "--per-block"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["batch"] == 2 and data["input_shape"] == [1, 32, 32] and data["blocks"]


def test_compile_runs_outside_the_timed_region() -> None:
    r = bs.bench(nn.Linear(8, 8), (8,), batch=2, compile=True, budget_s=0.05)
    assert r.error is None and r.warmup_reps >= 2  # the first (compiling) call is warm-up, never a sample
