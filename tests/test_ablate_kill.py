"""kill -9 in the middle of a trial, then the same command again: no row lost or written twice, the killed trial
continues from its last epoch, and every final metric equals an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from blockstitch.ablate import ablate
from blockstitch.ablate.store import read_rows

from ablate_helpers import spec

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


def _ablation() -> dict:
    data = {"generate": "shapes", "classes": 2, "train_per_class": 48, "val_per_class": 8, "size": 16}
    return spec(seeds=[0], data=data, recipe={**spec()["recipe"], "epochs": 4})


def _command(file: Path, run: Path) -> list[str]:
    return [sys.executable, "-m", "blockstitch", "ablate", str(file), "--run-dir", str(run), "--json", "--no-latency"]


def _partial(run: Path) -> list[Path]:
    """Trial folders with a checkpoint but no row yet: a trial caught mid-way."""
    rows, _ = read_rows(run / "results.jsonl")
    return [p.parent for p in (run / "trials").glob("*/last.pt") if p.parent.name not in rows]


def test_kill_9_mid_trial_then_resume(tmp_path: Path) -> None:
    file = tmp_path / "ablation.json"
    file.write_text(json.dumps(_ablation()))
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_command(file, run), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while not _partial(run) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    caught = _partial(run)
    assert caught, f"no trial was caught mid-way (exit {proc.returncode}): {proc.stderr.read().decode()[-500:]}"
    done = subprocess.run(_command(file, run), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows, bad = read_rows(run / "results.jsonl")
    lines = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines() if line.strip()]
    assert not bad and len(lines) == len(rows) == 2  # no row lost, none written twice
    resumed = [r for r in rows.values() if r["resumed_from_epoch"]]
    assert [r["key"] for r in resumed] == [caught[0].name] and 1 <= resumed[0]["resumed_from_epoch"] < 4
    whole = ablate(_ablation(), run_dir=tmp_path / "whole", latency=False)
    assert {r["key"]: r["metrics"] for r in whole.rows} == {k: r["metrics"] for k, r in rows.items()}
    assert json.loads(done.stdout)["rows"][1]["seeds"] == whole.table["rows"][1]["seeds"]
