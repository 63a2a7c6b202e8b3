"""``--trainer file.py:fit``: a user's loop as a task, named only by command-line text, called in the trial
scope with its seed, its numbers checked."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from train_models import recipe, tiny_net

from blockstitch.errors import SpecError
from blockstitch.sources import CommandLine
from blockstitch.train import RecordingReporter, Task, TrainError, load_user_trainer

LOOP = textwrap.dedent("""
    import torch

    def fit(model, recipe, reporter, *, data, seed, device, trial_dir):
        reporter.epoch(1, recipe.epochs, {"acc": 1.0})
        (trial_dir / "seen.txt").write_text(f"{seed} {data.name} {device} {torch.get_num_threads()}")
        return {"acc": float(torch.rand(()).item()), "loss": torch.tensor(0.5)}

    fit.metrics = ("acc", "loss")
    fit.primary = "acc"

    def plain(model, recipe, reporter, *, data, seed, device, trial_dir):
        return {"score": 2}

    def bad_shape(model, data):
        return {}

    def bad_result(model, recipe, reporter, *, data, seed, device, trial_dir):
        return {"acc": "high"}

    def diverged(model, recipe, reporter, *, data, seed, device, trial_dir):
        return {"acc": float("nan")}
""")


@pytest.fixture()
def loop(tmp_path: Path) -> Path:
    path = tmp_path / "my_loop.py"
    path.write_text(LOOP)
    return path


def test_user_trainer_is_called_seeded_in_scope_and_checked(loop: Path, tmp_path: Path) -> None:
    task = load_user_trainer(CommandLine(f"{loop}:fit"))
    assert isinstance(task, Task) and task.metrics == ("acc", "loss") and task.primary == "acc"
    reporter = RecordingReporter()
    runs = [task.fit(tiny_net(), recipe(threads=1), tmp_path / "data", seed=s, device="cpu",
                     trial_dir=tmp_path / f"t{i}", reporter=reporter) for i, s in enumerate((3, 3, 4))]
    torch.manual_seed(3)
    assert runs[0] == runs[1] == {"acc": torch.rand(()).item(), "loss": 0.5} != runs[2]
    assert (tmp_path / "t0" / "seen.txt").read_text() == "3 data cpu 1"
    assert reporter.epochs[0] == (1, 2, {"acc": 1.0})
    assert load_user_trainer(CommandLine(f"{loop}:plain")).primary == ""  # the table ranks by the first metric


def test_user_trainer_mistakes_are_clear(loop: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="only a command-line argument"):
        load_user_trainer(f"{loop}:fit")  # text from a file never names code
    with pytest.raises(SpecError, match=r"cannot be called as fit\(model, recipe, reporter"):
        load_user_trainer(CommandLine(f"{loop}:bad_shape"))
    with pytest.raises(SpecError, match="has no 'fitt'"):
        load_user_trainer(CommandLine(f"{loop}:fitt"))
    for name, message in (("bad_result", "'acc': 'high', not a number"), ("diverged", "training diverged")):
        task = load_user_trainer(CommandLine(f"{loop}:{name}"))
        with pytest.raises(TrainError, match=message):
            task.fit(tiny_net(), recipe(), tmp_path, seed=0, device="cpu", trial_dir=tmp_path / name)
