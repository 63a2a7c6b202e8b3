"""The classify trainer on CUDA: mixed precision, a checkpoint written on the GPU resumed onto it, the trial's
switches put back. Skipped without CUDA. (Bit-for-bit equality is promised on the CPU only.)"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from train_models import recipe, tiny_data, tiny_net  # noqa: E402

from blockstitch.train import RecordingReporter, get_task  # noqa: E402

pytestmark = pytest.mark.gpu


def test_classify_on_cuda_with_amp_resumes(tmp_path: Path) -> None:
    data = tiny_data(tmp_path / "data")

    class Crash(RecordingReporter):
        def epoch(self, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        get_task("classify").fit(tiny_net(), recipe(amp=True), data, seed=0, device="cuda",
                                 trial_dir=tmp_path / "t", reporter=Crash())
    reporter = RecordingReporter()
    model = tiny_net(init_seed=5)
    result = get_task("classify").fit(model, recipe(amp=True), data, seed=0, device="cuda", trial_dir=tmp_path / "t",
                                      reporter=reporter)
    assert [e for e, _, _ in reporter.epochs] == [2] and result["epochs"] == 2
    assert all(math.isfinite(v) for v in result.values()) and next(model.parameters()).is_cuda
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
