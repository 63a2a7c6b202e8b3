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
                 roofline=False)
    assert r.error == "out of memory"


def test_check_module_half_on_cuda() -> None:
    report = bs.check_module("se", compile=False, export=False)
    assert {c.name: c.status for c in report.checks}["float16 (CUDA)"] == "passed"
