"""check-module is isolated from the module it checks: a hang, a memory explosion or a killed process at one
size is a reported failure at that size; the user's instance and global torch state are left as they were."""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.meta import fingerprint

QUICK = {"channels": False}


class HangsAt(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size, self.proj = size, nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while x.shape[-1] == self.size:  # a loop that never ends at one size
            pass
        return self.proj(x)


class ExplodesAt(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size, self.proj = size, nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.size:
            hoard = [torch.ones(2**26) for _ in range(10_000)]  # 256 MiB at a time, until memory runs out
            return x + len(hoard)
        return self.proj(x)


class KillsAt(nn.Module):
    def __init__(self, size: int, how: str) -> None:
        super().__init__()
        self.size, self.how, self.proj = size, how, nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.size:
            if self.how == "segv":
                os.kill(os.getpid(), signal.SIGSEGV)
            os._exit(3)
        return self.proj(x)


def _at(report: bs.CheckReport, size: tuple[int, int]) -> dict:
    return next(r for r in report.sweep if tuple(r["size"]) == size)


def test_a_hang_is_a_failure_at_that_size() -> None:
    t0 = time.perf_counter()
    report = bs.check_module(HangsAt(13), seconds=1.0, **QUICK)
    assert time.perf_counter() - t0 < 60
    assert "took longer than 1 s" in _at(report, (13, 13))["error"] and not report.ok
    assert all(r["ok"] == (r["size"][-1] != 13) for r in report.sweep)  # the sizes after it still ran
    assert report.size_rule.kind == "none" and "13×13" in report.size_rule.text
    assert report.check("gradients").status == "passed"  # the rest of the check went on in a fresh worker


def test_a_memory_explosion_is_a_failure_at_that_size() -> None:
    report = bs.check_module(ExplodesAt(11), max_bytes=2**30, **QUICK)
    error = _at(report, (11, 11))["error"]
    assert "memory" in error.lower() or "alloc" in error.lower(), error
    assert _at(report, (12, 12))["ok"] and report.check("train and eval, batch 1 and 2").status == "passed"


@pytest.mark.parametrize("how, words", [("segv", "SIGSEGV"), ("exit", "exit code 3")])
def test_a_killed_process_is_a_failure_at_that_size(how: str, words: str) -> None:
    report = bs.check_module(KillsAt(9, how), **QUICK)
    assert words in _at(report, (9, 9))["error"]
    assert _at(report, (10, 10))["ok"] and report.isolation["forks"] >= 2


class Stateful(nn.Module):
    """Everything a careless checker could change: BN statistics, a counter, a cache, hooks, modes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.calls, self.seen, self.scale = 0, [], torch.ones(1)
        self.register_forward_hook(lambda m, i, o: None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen.append(tuple(x.shape))
        self.scale.mul_(1.01)
        torch.manual_seed(123)  # a module that reseeds the global RNG
        torch.set_default_dtype(torch.float64)
        out = self.bn(self.conv(x)).float() * self.scale
        torch.set_default_dtype(torch.float32)
        return out


def test_the_users_instance_and_torch_state_are_untouched(capfd: pytest.CaptureFixture) -> None:
    module = Stateful().train()
    module.conv.weight.requires_grad_(False)
    before = fingerprint(module)
    rng, dtype, grad = torch.get_rng_state(), torch.get_default_dtype(), torch.is_grad_enabled()
    report = bs.check_module(module, **QUICK)
    assert report.base is not None and report.modes
    assert fingerprint(module) == before and module.calls == 0 and module.seen == [] and module.training
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_default_dtype() == dtype
    assert torch.is_grad_enabled() == grad


def test_a_module_that_prints_does_not_corrupt_the_output(capfd: pytest.CaptureFixture) -> None:
    class Chatty(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            print("debug: shape", x.shape)
            return x * 2

    report = bs.check_module(Chatty(), axes={"c": 4}, **QUICK)
    assert report.ok
    assert "debug" not in capfd.readouterr().out


def test_the_in_process_fallback_works_on_a_copy_under_a_time_limit() -> None:
    """Where fork does not exist, probes run in-process: on a deep copy, each under SIGALRM."""
    from blockstitch.check.probes.sizes import SizeTask, run_sizes
    from blockstitch.check.under_test import UnderTest
    from blockstitch.check.worker import Worker

    module = Stateful()
    before = fingerprint(module)
    items = [SizeTask((2, 8, s, s), 8, "b c h w", real=True) for s in (4, 13, 5)]
    with Worker(UnderTest(instance=module), fork=False) as worker:
        replies = [r for _, r in worker.stream(run_sizes, items, seconds=1.0)]
    assert [r.value.output for r in replies] == [[2, 8, 4, 4], [2, 8, 13, 13], [2, 8, 5, 5]]
    assert fingerprint(module) == before
    with Worker(UnderTest(instance=HangsAt(13)), fork=False) as worker:
        replies = [r for _, r in worker.stream(run_sizes, items, seconds=0.5)]
    assert replies[0].ok and replies[2].ok
    assert "took longer than 0.5 s" in (replies[1].error or replies[1].value.error)


def test_the_callers_grad_mode_does_not_change_the_verdict() -> None:
    """A caller under no_grad or inference_mode (or a test that leaked one) gets the same report."""
    module = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
    plain = bs.check_module(module, **QUICK)
    with torch.no_grad():
        quiet = bs.check_module(module, **QUICK)
    with torch.inference_mode():
        inference = bs.check_module(module, **QUICK)
    assert plain.ok and quiet.ok and inference.ok and inference.dead_params == [] and torch.is_grad_enabled()


def test_gradients_are_checked_after_the_caller_ran_a_backward_pass() -> None:
    """A forked child cannot run autograd once its parent has: the gradient probe then runs in-process on a copy."""
    nn.Linear(2, 2)(torch.randn(1, 2, requires_grad=True)).sum().backward()
    module = DeadParamLike()
    before = fingerprint(module)
    r = bs.check_module(module, **QUICK)
    assert r.dead_params == ["unused.weight", "unused.bias"] and fingerprint(module) == before


class DeadParamLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.unused = nn.Conv2d(8, 8, 1), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)
