"""Ray on a local session (2 CPUs, 127.0.0.1 only, no dashboard; one session for the module): a sweep writes the
same JSONL rows on Ray as locally, nothing listens beyond the loopback address, and without Ray the error is one
line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from blockstitch.bench.sweep import SweepSpec, entry_key, read_results, run_sweep  # noqa: E402
from blockstitch.raycluster import ray_session  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    with ray_session(num_cpus=2) as session:
        yield session


def test_sweep_on_ray_writes_the_same_rows(local_ray, tmp_path: Path) -> None:
    spec = SweepSpec(targets=["lenet5"], batch=[1, 2], budget_s=0.02)
    local = read_results(_sweep(spec, tmp_path / "local.jsonl", "local"))
    remote = read_results(_sweep(spec, tmp_path / "ray.jsonl", "ray"))
    assert sorted(map(entry_key, local)) == sorted(map(entry_key, remote))
    assert [sorted(e) for e in sorted(local, key=entry_key)] == [sorted(e) for e in sorted(remote, key=entry_key)]
    assert all(e.get("median_ms") and not e.get("error") for e in remote)
    # resumed on Ray: nothing measured again
    assert run_sweep(spec, tmp_path / "ray.jsonl", backend="ray") == remote


def _sweep(spec: SweepSpec, out: Path, backend: str) -> Path:
    run_sweep(spec, out, backend=backend)
    return out


def test_every_ray_process_listens_on_the_loopback_address_only(local_ray) -> None:
    import psutil

    mine = {p.pid for p in psutil.Process().children(recursive=True)}
    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in mine]
    assert listening  # the check saw Ray's servers (gcs, raylet, workers), so it can fail
    assert {c.laddr.ip for c in listening} <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening


def test_ray_missing_is_one_line(monkeypatch) -> None:
    from blockstitch.raycluster import RayUnavailable, require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(RayUnavailable, match=r"pip install 'blockstitch\[ray\]'"):
        require_ray()
