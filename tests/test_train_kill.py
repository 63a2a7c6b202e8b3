"""A trial killed with SIGKILL in the middle of epoch 2 resumes from ``last.pt`` and ends with the same weights
and metrics as a run that was never stopped (CPU, same seed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from train_models import recipe, same_weights, tiny_data, tiny_net, weights

from blockstitch.train import RecordingReporter, get_task
from blockstitch.train.checkpoint import LAST, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path[:0] = [{root!r}, {tests!r}]
    import torch
    from train_models import recipe, tiny_net
    from blockstitch.train import Reporter, get_task

    torch.set_num_threads(1)
    model, state = tiny_net(), {{"epoch": 0, "forwards": 0}}

    class Mark(Reporter):
        def epoch(self, epoch, epochs, metrics):
            state["epoch"] = epoch

    def hook(module, args):
        if module.training and state["epoch"] == 1:
            state["forwards"] += 1
            if state["forwards"] == 2:  # epoch 2 has taken a step: weights in memory are past the checkpoint
                Path({mark!r}).write_text("mid-epoch-2")
                time.sleep(120)

    model.register_forward_pre_hook(hook)
    get_task("classify").fit(model, recipe(), Path({data!r}), seed=0, device="cpu", trial_dir=Path({trial!r}),
                             reporter=Mark())
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_9_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = tiny_data(tmp_path / "data")
    trial, mark = tmp_path / "trial", tmp_path / "mark"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"), mark=str(mark), data=str(data),
                                   trial=str(trial)))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not mark.exists():
            assert child.poll() is None, child.stdout.read().decode() if child.stdout else "child ended"
            assert time.monotonic() < deadline, "the child never reached epoch 2"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert load_checkpoint(trial / LAST)["epoch"] == 1

    reporter = RecordingReporter()
    model = tiny_net(init_seed=42)
    resumed = get_task("classify").fit(model, recipe(), data, seed=0, device="cpu", trial_dir=trial,
                                       reporter=reporter)
    straight_model = tiny_net()
    straight = get_task("classify").fit(straight_model, recipe(), data, seed=0, device="cpu",
                                        trial_dir=tmp_path / "straight", reporter=RecordingReporter())
    assert [e for e, _, _ in reporter.epochs] == [2]
    assert resumed == straight and same_weights(weights(model), weights(straight_model))
