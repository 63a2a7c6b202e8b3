"""GPU benchmarking: device events, CUDA graphs, float16, allocator peaks. Skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

import blockstitch as bs

pytestmark = pytest.mark.gpu


def test_cuda_bench_reports_memory_and_efficiency() -> None:
    r = bs.bench("resnet50", batch=8, device="cuda", dtype="bfloat16", budget_s=0.5)
    assert r.error is None and r.peak_allocated_bytes > 0 and r.peak_reserved_bytes >= r.peak_allocated_bytes
    assert 0 < r.roofline_efficiency <= 1.2 and "NVIDIA" in r.device_name or r.device_name


@pytest.mark.parametrize("options", [{"cuda_graphs": True}, {"dtype": "float16"}, {"amp": True, "dtype": "bfloat16"},
                                     {"channels_last": True}, {"flush_l2": True}, {"mode": "train"}])
def test_cuda_options(options: dict) -> None:
    r = bs.bench("cbam", (64, 56, 56), batch=16, device="cuda", budget_s=0.2, **options)
    assert r.error is None and r.median_ms > 0


def test_cuda_out_of_memory_is_reported() -> None:
    total = torch.cuda.get_device_properties(0).total_memory
    r = bs.bench("vgg16", batch=max(1, total // (3 * 224 * 224 * 4 * 8)), device="cuda", budget_s=0.1,
                 roofline=False)  # refused on the estimate (activations alone are ~15x the card): nothing allocated
    assert r.error is not None and r.error.startswith("out of memory (estimated before allocating)")
    assert torch.cuda.memory_allocated() < 2**30


def test_cuda_events_do_not_count_launch_latency_the_device_hides() -> None:
    """Tiny kernels: grouped, queued samples agree with Timer's amortised loop (within 15%)."""
    import torch.utils.benchmark as tb

    from blockstitch.bench.timing import measure

    layer, x = torch.nn.Linear(1024, 1024, device="cuda"), torch.randn(64, 1024, device="cuda")

    def fn() -> object:
        with torch.inference_mode():
            return layer(x)

    ours = measure(fn, torch.device("cuda"), budget_s=0.5).median_ms
    theirs = tb.Timer("fn()", globals={"fn": fn}).blocked_autorange(min_run_time=0.5).median * 1e3
    assert 0.85 <= ours / theirs <= 1.15, (ours, theirs)


def test_check_module_half_on_cuda() -> None:
    report = bs.check_module("se", compile=False, export=False)
    assert {c.name: c.status for c in report.checks}["float16 (CUDA)"] == "passed"


def test_compile_check_runs_after_the_caller_has_used_cuda() -> None:
    """A forked worker cannot use CUDA once the caller has; torch.compile there must not try to."""
    torch.zeros(1, device="cuda")
    report = bs.check_module("se", compile=True, export=False)
    compiled = [c for c in report.checks if c.name.startswith("torch.compile")]
    assert compiled and compiled[0].status == "passed", compiled
