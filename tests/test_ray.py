"""Ray on a local session (2 CPUs, 127.0.0.1 only, no dashboard; one session for the module): an ablation's rows
on Ray equal the local backend's, a grid moves from local to Ray and back, a trial that fails by itself is one
row and no retry, Ctrl-C cancels and the next run resumes, a sweep writes the same JSONL rows, and nothing
listens beyond the loopback address."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import ablate_helpers  # noqa: E402
import ray_standin as standin  # noqa: E402

from blockstitch.ablate import ablate  # noqa: E402
from blockstitch.ablate.backends.local import LocalBackend  # noqa: E402
from blockstitch.ablate.backends.ray_backend import RayBackend  # noqa: E402
from blockstitch.bench.sweep import SweepSpec, entry_key, read_results, run_sweep  # noqa: E402
from blockstitch.cli import main  # noqa: E402
from blockstitch.raycluster import ray_session  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.cloudpickle.register_pickle_by_value(standin)  # the workers cannot import tests/ by name
    try:
        with ray_session(num_cpus=2) as session:
            yield session
    finally:
        ray.cloudpickle.unregister_pickle_by_value(standin)


def _collect(backend: RayBackend, jobs) -> dict[str, dict]:
    rows: dict[str, dict] = {}

    def on_result(job, row) -> None:
        assert job.key not in rows, f"{job.key} recorded twice"
        rows[job.key] = row

    backend.run(jobs, on_result)
    return rows


def _metrics(result) -> dict[tuple[str, int], dict]:
    return {(r["variant"], r["seed"]): r["metrics"] for r in result.rows}


def test_an_ablation_on_ray_gives_the_local_rows(local_ray, tmp_path: Path) -> None:
    spec = ablate_helpers.spec()  # baseline and one variant × seeds 0, 1: four trials, one thread each
    here = ablate(spec, run_dir=tmp_path / "local", backend="local", plot=False)
    there = ablate(spec, run_dir=tmp_path / "ray", backend="ray", plot=False)
    assert len(there.rows) == 4 and all(r["status"] == "ok" for r in there.rows)
    assert _metrics(there) == _metrics(here)  # identical, not close: Ray changes where, never what
    lines = (tmp_path / "ray" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4  # the driver wrote each row once
    assert sorted(here.rows[0]) == sorted(there.rows[0])


class _StopsAfter:
    """A backend interrupted (Ctrl-C) once it has written ``n`` rows."""

    def __init__(self, inner, n: int) -> None:
        self.inner, self.n = inner, n

    def run(self, jobs, on_result, on_progress=None) -> None:
        done = []

        def stop_after(job, row) -> None:
            on_result(job, row)
            done.append(job)
            if len(done) == self.n:
                raise KeyboardInterrupt

        self.inner.run(jobs, stop_after, on_progress)


def test_a_grid_moves_between_backends_and_finishes(local_ray, tmp_path: Path) -> None:
    spec = ablate_helpers.spec()
    with pytest.raises(KeyboardInterrupt):  # started here …
        ablate(spec, run_dir=tmp_path / "run", backend=_StopsAfter(LocalBackend(1), 1), plot=False)
    with pytest.raises(KeyboardInterrupt):  # … carried on with Ray …
        ablate(spec, run_dir=tmp_path / "run", backend=_StopsAfter(RayBackend(None), 1), plot=False)
    finished = ablate(spec, run_dir=tmp_path / "run", backend="local", plot=False)  # … and finished here again
    assert finished.counts["reused"] == 2 and finished.counts["new"] == 2
    whole = ablate(spec, run_dir=tmp_path / "whole", backend="local", plot=False)
    assert _metrics(finished) == _metrics(whole)
    lines = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4  # every trial recorded once across the three runs


def test_a_trial_that_fails_by_itself_is_one_row_and_not_retried(local_ray, tmp_path: Path) -> None:
    jobs = [standin.job(tmp_path, "broken", 0), standin.job(tmp_path, "baseline", 0)]
    rows = _collect(RayBackend(None, max_retries=3, function=standin.trial), jobs)
    assert rows[jobs[0].key]["status"] == "failed" and "NaN" in rows[jobs[0].key]["error"]
    assert len(standin.starts(jobs[0])) == 1
    assert rows[jobs[1].key]["status"] == "ok"


def test_a_task_that_raises_becomes_a_failed_row(local_ray, tmp_path: Path) -> None:
    jobs = [standin.job(tmp_path, "baseline", 0)]
    rows = _collect(RayBackend(None, max_retries=2, function=standin.raises), jobs)
    assert rows[jobs[0].key]["status"] == "failed"
    assert rows[jobs[0].key]["error"].startswith("MemoryError: a task that raises")


def test_interrupt_cancels_running_trials_and_the_next_run_resumes(local_ray, tmp_path: Path) -> None:
    jobs = [standin.job(tmp_path, "slow", s, epochs=30, seconds=0.1) for s in range(3)]
    written: dict[str, dict] = {}

    def on_progress(key, epoch, epochs, metrics) -> None:
        if epoch >= 3:
            raise KeyboardInterrupt  # Ctrl-C in the driver, three epochs into a trial

    with pytest.raises(KeyboardInterrupt):
        RayBackend(None, function=standin.trial).run(jobs, lambda job, row: written.setdefault(job.key, row),
                                                      on_progress)
    slow = [j for j in jobs if j.key not in written]
    assert slow, "the interrupt came after the grid had finished: nothing was tested"
    last = [Path(j.trial_dir) / "last.json" for j in slow]
    time.sleep(1.0)  # a cancelled trial writes no more checkpoints
    saved = [p.read_text() if p.exists() else None for p in last]
    time.sleep(0.5)
    assert saved == [p.read_text() if p.exists() else None for p in last]
    rows = _collect(RayBackend(None, function=standin.trial), slow)  # the driver skips the written rows
    assert {k: r["metrics"]["top1"] for k, r in rows.items()} == {j.key: standin.chain(j.seed, 30) for j in slow}
    assert max(r["resumed_from_epoch"] or 0 for r in rows.values()) >= 3  # went on from a checkpoint


def test_sweep_on_ray_writes_the_same_rows(local_ray, tmp_path: Path, monkeypatch) -> None:
    from blockstitch.bench import sweep_ray

    on_ray: list[int] = []
    original = sweep_ray.measure_on_ray

    def counting(todo, *args, **kwargs):
        on_ray.append(len(todo))
        return original(todo, *args, **kwargs)

    monkeypatch.setattr(sweep_ray, "measure_on_ray", counting)
    spec = SweepSpec(targets=["lenet5"], batch=[1, 2], budget_s=0.02)
    run_sweep(spec, tmp_path / "local.jsonl")
    local = read_results(tmp_path / "local.jsonl")
    sweep = tmp_path / "ray.yaml"
    sweep.write_text("targets: [lenet5]\nbatch: [1, 2]\nbudget_s: 0.02\nbackend: ray\ncpus_per_trial: 0.5\n")
    assert main(["sweep", str(sweep), "--cpus-per-trial", "1", "--no-plots"]) == 0  # the file says ray
    assert on_ray == [2]
    remote = read_results(tmp_path / "ray.jsonl")
    assert sorted(map(entry_key, local)) == sorted(map(entry_key, remote))
    assert [sorted(e) for e in sorted(local, key=entry_key)] == [sorted(e) for e in sorted(remote, key=entry_key)]
    assert all(e.get("median_ms") and not e.get("error") for e in remote)
    assert run_sweep(spec, tmp_path / "ray.jsonl", backend="ray") == remote
    assert on_ray == [2]  # resumed: nothing left, no Ray task (nor a Ray start)


def test_every_ray_process_listens_on_the_loopback_address_only(local_ray) -> None:
    listening = standin.listening_addresses()
    assert listening  # the check saw Ray's servers (gcs, raylet, workers), so it can fail
    assert listening <= standin.LOOPBACK_ADDRESSES, listening
