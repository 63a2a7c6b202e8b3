"""The scale-out flags without Ray running: fractions parse, nonsense is refused, and without Ray installed
``--backend ray`` is one line and exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from blockstitch.cli import main


def test_without_ray_backend_ray_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("targets: [lenet5]\n")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["sweep", str(sweep), "--backend", "ray", "--no-plots"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "pip install 'blockstitch[ray]'" in lines[0], lines
    assert not (tmp_path / "sweep.jsonl").exists()  # nothing ran


def test_without_ray_ablate_backend_ray_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    import ablate_helpers
    import yaml

    ablation = tmp_path / "ablation.yaml"
    ablation.write_text(yaml.safe_dump(ablate_helpers.spec()))
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["ablate", str(ablation), "--backend", "ray", "--run-dir", str(tmp_path / "run")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "pip install 'blockstitch[ray]'" in lines[0], lines
    assert not (tmp_path / "run").exists()  # refused before anything ran


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "two"])
def test_resource_amounts_are_checked(value: str, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", str(tmp_path / "s.yaml"), "--backend", "ray", "--gpus-per-trial", value])
    assert exit_.value.code == 2 and "--gpus-per-trial" in capsys.readouterr().err


def test_fractions_are_allowed() -> None:
    from blockstitch.cli import parser

    args = parser().parse_args(["sweep", "s.yaml", "--backend", "ray", "--address", "auto",
                                "--cpus-per-trial", "0.5", "--gpus-per-trial", "0.25"])
    assert (args.backend, args.address, args.cpus_per_trial, args.gpus_per_trial) == ("ray", "auto", 0.5, 0.25)


def test_cuda_on_ray_without_a_gpu_reserved_is_refused_before_anything_runs(tmp_path: Path, capsys) -> None:
    pytest.importorskip("ray")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("targets: [lenet5]\ndevice: cuda\n")
    assert main(["sweep", str(sweep), "--backend", "ray", "--no-plots"]) == 2
    assert "--gpus-per-trial > 0" in capsys.readouterr().err
    assert not (tmp_path / "sweep.jsonl").exists()


def test_ray_backend_refuses_cuda_jobs_without_gpus() -> None:
    pytest.importorskip("ray")
    import ray

    from blockstitch.ablate.backends.ray_backend import RayBackend
    from blockstitch.ablate.trial import TrialJob
    from blockstitch.errors import SpecError

    job = TrialJob(key="k", variant="baseline", seed=0, digest="d", base="lenet5", edits={}, recipe={},
                   task="classify", trainer=None, data="data", device="cuda:0", trial_dir="t", input_shape=None)
    with pytest.raises(SpecError, match="gpus-per-trial"):
        RayBackend(None, gpus_per_trial=0).run([job], lambda job, row: None)
    assert not ray.is_initialized()  # refused before a Ray started


def test_workers_with_ray_is_said_to_be_ignored(tmp_path: Path, monkeypatch, capsys) -> None:
    pytest.importorskip("ray")
    import importlib

    from blockstitch.errors import BlockstitchError

    ablate_api = importlib.import_module("blockstitch.ablate")  # the package (the attribute is the function)

    def stop(*args, **kwargs):
        raise BlockstitchError("stopped here: the test only reads the warnings")

    monkeypatch.setattr(ablate_api, "ablate", stop)
    assert main(["ablate", str(tmp_path / "a.yaml"), "--backend", "ray", "--workers", "4"]) == 2
    assert "--workers is for the local backend" in capsys.readouterr().err
