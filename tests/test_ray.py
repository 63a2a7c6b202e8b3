"""Ray on a local session (2 CPUs, 127.0.0.1 only, no dashboard; one session for the module): a sweep writes the
same JSONL rows on Ray as locally, nothing listens beyond the loopback address."""

from __future__ import annotations

from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from blockstitch.bench.sweep import SweepSpec, entry_key, read_results, run_sweep  # noqa: E402
from blockstitch.cli import main  # noqa: E402
from blockstitch.raycluster import ray_session  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    with ray_session(num_cpus=2) as session:
        yield session


def test_sweep_on_ray_writes_the_same_rows(local_ray, tmp_path: Path) -> None:
    spec = SweepSpec(targets=["lenet5"], batch=[1, 2], budget_s=0.02)
    run_sweep(spec, tmp_path / "local.jsonl")
    local = read_results(tmp_path / "local.jsonl")
    sweep = tmp_path / "ray.yaml"
    sweep.write_text("targets: [lenet5]\nbatch: [1, 2]\nbudget_s: 0.02\n")
    assert main(["sweep", str(sweep), "--backend", "ray", "--cpus-per-trial", "1", "--no-plots"]) == 0
    remote = read_results(tmp_path / "ray.jsonl")
    assert sorted(map(entry_key, local)) == sorted(map(entry_key, remote))
    assert [sorted(e) for e in sorted(local, key=entry_key)] == [sorted(e) for e in sorted(remote, key=entry_key)]
    assert all(e.get("median_ms") and not e.get("error") for e in remote)
    # resumed on Ray: nothing measured again
    assert run_sweep(spec, tmp_path / "ray.jsonl", backend="ray") == remote


def test_every_ray_process_listens_on_the_loopback_address_only(local_ray) -> None:
    import psutil

    mine = {p.pid for p in psutil.Process().children(recursive=True)}
    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in mine]
    assert listening  # the check saw Ray's servers (gcs, raylet, workers), so it can fail
    assert {c.laddr.ip for c in listening} <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening
