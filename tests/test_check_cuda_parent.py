"""check-module never touches CUDA in the calling process: the worker decides whether there is a GPU. Asking the
driver in the caller (``torch.cuda.is_available()`` does) would make every forked worker fail at its first CUDA
call ("Cannot re-initialize CUDA in forked subprocess"). The truth: torch's own fork-poisoning flag, seen from a
child forked after the check, and a recorder on the driver calls in this process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import blockstitch as bs

ON_GPU = textwrap.dedent("""
    import torch
    from torch import nn


    class OnGpu(nn.Module):
        def __init__(self, channels: int = 16) -> None:
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 1).cuda()  # paper code: "the model lives on the GPU"

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x.to(self.conv.weight.device)).cpu()
""")


def _child_sees_bad_fork() -> bool:
    """torch's own flag, read in a child forked now: would a worker forked now be unable to use CUDA?"""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover — the child
        os.write(write, b"1" if torch.cuda._is_in_bad_fork() else b"0")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    answer = os.read(read, 1)
    os.close(read)
    return answer == b"1"


def test_a_full_check_asks_the_driver_nothing_in_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    caller, calls = os.getpid(), []
    for owner, name in [(torch._C, "_cuda_getDeviceCount"), (torch.cuda, "_lazy_init"), (torch.cuda, "init")]:
        real = getattr(owner, name)

        def record(*args, _real=real, _name=name):  # type: ignore[no-untyped-def]
            if os.getpid() == caller:  # calls in the forked worker are the worker's business
                calls.append(_name)
            return _real(*args)

        monkeypatch.setattr(owner, name, record)
    report = bs.check_module(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)), channels=False)
    assert report.ok, [c.message for c in report.checks if c.status == "failed"]
    assert calls == [] and not torch.cuda.is_initialized()
    assert report.check("float16 (CUDA)") is not None  # the GPU check was asked for, in the worker


@pytest.mark.skipif(Path("/proc/driver/nvidia").exists(), reason="this machine has an NVIDIA driver")
def test_a_constructor_that_calls_cuda_is_told_it_needs_a_gpu(tmp_path: Path) -> None:
    """In a fresh process (this one may have asked the driver in another test): the verdict names the cause."""
    (tmp_path / "paper.py").write_text(ON_GPU)
    script = textwrap.dedent(f"""
        import json, os, torch
        from blockstitch.cli import main
        code = main(["check-module", {str(tmp_path / "paper.py:OnGpu")!r}, "--in", "b c h w", "--json"])
        print("CUDA_INITIALISED", torch.cuda.is_initialized(), "BAD_FORK_FLAG", torch.cuda._is_in_bad_fork())
        raise SystemExit(code)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1, done.stderr[-2000:]
    body, _, tail = done.stdout.rpartition("CUDA_INITIALISED")
    report = json.loads(body)
    sizes = next(c for c in report["checks"] if c["name"] == "sizes")
    assert sizes["status"] == "failed" and "needs CUDA, and this machine has no GPU" in sizes["message"]
    assert "re-initialize" not in done.stdout and "internal error" not in done.stdout + done.stderr
    assert tail.split() == ["False", "BAD_FORK_FLAG", "False"]


def test_the_caller_stays_forkable_for_cuda() -> None:
    """After a full check, a child forked from this process could still use CUDA (unless something else in
    this test session had asked the driver before: then there is nothing to tell)."""
    if _child_sees_bad_fork():
        pytest.skip("this test process had asked the CUDA driver before (another test did)")
    bs.check_module("se", axes={"c": 16}, channels=False)
    assert not _child_sees_bad_fork()


@pytest.mark.gpu
def test_a_constructor_that_calls_cuda_runs_in_the_worker(tmp_path: Path) -> None:
    (tmp_path / "paper.py").write_text(ON_GPU)
    script = textwrap.dedent(f"""
        import json, torch
        from blockstitch.check import check_module
        from blockstitch.subject import subject
        r = check_module(subject({str(tmp_path / "paper.py:OnGpu")!r}, accept={{"code"}}), input="b c h w",
                         channels=False)
        print(json.dumps({{"ok": r.ok, "sizes": r.check("sizes").status, "init": torch.cuda.is_initialized()}}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["sizes"] == "passed" and found["init"] is False, (found, done.stderr[-2000:])
