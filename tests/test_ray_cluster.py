"""A simulated two-node Ray cluster on 127.0.0.1 (``ray.cluster_utils.Cluster``): the node running a trial is
removed mid-trial; Ray starts the trial again on the node left, it goes on from its last epoch checkpoint, and
every trial is recorded once with the metrics of an uninterrupted run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

import ray_standin as standin  # noqa: E402

from blockstitch.ablate.backends.ray_backend import RayBackend  # noqa: E402
from blockstitch.raycluster import LOOPBACK, loopback_only  # noqa: E402


@pytest.fixture(scope="module")
def two_nodes():
    loopback_only()
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": LOOPBACK, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
    ray.cloudpickle.register_pickle_by_value(standin)  # the workers cannot import tests/ by name
    try:
        yield cluster, worker
    finally:
        ray.cloudpickle.unregister_pickle_by_value(standin)
        ray.shutdown()
        cluster.shutdown()


def test_a_node_dies_mid_trial_and_the_grid_finishes_with_every_trial_once(two_nodes, tmp_path: Path) -> None:
    cluster, worker = two_nodes
    jobs = [standin.job(tmp_path, v, s, epochs=6, seconds=0.2, stall_on=worker.node_id)
            for v in ("baseline", "eca") for s in (0, 1)]
    rows: dict[str, dict] = {}
    killed: list[str] = []
    listening: set[str] = set()

    def on_progress(key, epoch, epochs, metrics) -> None:
        # a trial two epochs into its run on the worker node (where it stalls): that node goes, trial and all
        job = next(j for j in jobs if j.key == key)
        if not killed and epoch == 2 and standin.starts(job) == [worker.node_id]:
            listening.update(standin.listening_addresses())  # both nodes up, trials running
            killed.append(key)
            cluster.remove_node(worker)

    def on_result(job, row) -> None:
        assert job.key not in rows, f"{job.key} recorded twice"
        rows[job.key] = row

    t0 = time.perf_counter()
    assert cluster.address.startswith(f"{LOOPBACK}:")
    RayBackend(cluster.address, cpus_per_trial=1, max_retries=2, function=standin.trial).run(  # joins the cluster
        jobs, on_result, on_progress)
    assert not ray.is_initialized()  # the driver left the cluster it joined; the cluster itself stays up
    assert killed, "no trial ran on the worker node: nothing was tested"
    assert sorted(rows) == sorted(j.key for j in jobs)
    assert {k: r["metrics"]["top1"] for k, r in rows.items()} == {j.key: standin.chain(j.seed, 6) for j in jobs}
    lost = next(j for j in jobs if j.key == killed[0])
    assert len(standin.starts(lost)) == 2  # started on the worker, started again on the head …
    assert rows[lost.key]["resumed_from_epoch"] >= 2  # … and went on from its checkpoint, not from epoch 0
    assert time.perf_counter() - t0 < 120
    assert listening and listening <= standin.LOOPBACK_ADDRESSES, listening  # the simulated nodes too
