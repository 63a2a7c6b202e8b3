"""DDP trains assembled and stitched networks exactly like one process on the same global batch (gloo, CPU).

Two spawned processes each take half of every global batch; DDP averages their gradients, so after a few SGD
steps the weights must equal single-process training on the whole batch (in float64, so that float32 rounding,
which a few steps amplify to ~1e-6 on their own, cannot hide or fake a difference). GroupNorm keeps the networks
per-sample (BatchNorm would normalise each half by its own statistics — DDP's documented behaviour, and what
SyncBatchNorm fixes on GPUs). Also: examples/train.py runs under torchrun unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import blockstitch as bs

WORLD, STEPS, GLOBAL_BATCH, LR = 2, 3, 8, 0.1
SPEC = {"name": "ddp_net", "input": [3, 16, 16], "defaults": {"norm": "groupnorm", "act": "relu"},
        "nodes": [{"id": "stem", "kind": "conv", "out_channels": 32},
                  {"id": "layer1", "kind": "basic", "out_channels": 32},
                  {"id": "layer2", "kind": "basic", "out_channels": 64, "stride": 2},
                  {"id": "pool", "kind": "adaptive_avgpool", "output_size": 1},
                  {"id": "flatten", "kind": "flatten"},
                  {"id": "fc", "kind": "linear", "out_features": 10}]}
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train.py"


def make(kind: str) -> nn.Module:
    """The same initial weights in every process: an assembled network, or one with SE and ECA stitched in."""
    torch.manual_seed(0)
    model = bs.build(SPEC)
    if kind == "stitched":
        model, _ = bs.stitch(model, insert=[{"after": "layer*", "block": {"kind": "se"}},
                                            {"before": "pool", "block": {"kind": "eca"}, "identity_init": True}])
    return model.double()


def data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return (torch.randn(STEPS, GLOBAL_BATCH, 3, 16, 16, generator=gen, dtype=torch.float64),
            torch.randint(0, 10, (STEPS, GLOBAL_BATCH), generator=gen))


def train(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    for x, y in zip(images, labels):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def worker(rank: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=WORLD)
    try:
        images, labels = data()
        half = slice(rank * GLOBAL_BATCH // WORLD, (rank + 1) * GLOBAL_BATCH // WORLD)
        for kind in ("assembled", "stitched"):
            model = make(kind)
            train(nn.parallel.DistributedDataParallel(model), images[:, half], labels[:, half])
            torch.save(model.state_dict(), f"{folder}/{kind}_{rank}.pt")
    finally:
        dist.destroy_process_group()


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def test_ddp_equals_single_process_on_the_global_batch(tmp_path) -> None:
    mp.start_processes(worker, args=(str(tmp_path),), nprocs=WORLD, start_method="spawn")
    images, labels = data()
    for kind in ("assembled", "stitched"):
        ranks = [torch.load(tmp_path / f"{kind}_{r}.pt", weights_only=True) for r in range(WORLD)]
        assert _max_diff(ranks[0], ranks[1]) == 0.0  # DDP keeps the replicas identical
        single = make(kind)
        start = {k: v.clone() for k, v in single.state_dict().items()}
        train(single, images, labels)
        assert _max_diff(ranks[0], single.state_dict()) <= 1e-9, kind
        assert _max_diff(start, single.state_dict()) > 1e-2  # it did train
        alone = make(kind)  # control: rank 0's half without DDP's averaging ends elsewhere
        train(alone, images[:, : GLOBAL_BATCH // WORLD], labels[:, : GLOBAL_BATCH // WORLD])
        assert _max_diff(alone.state_dict(), single.state_dict()) > 1e-4
    assert any(k.endswith("_se.fc1.weight") for k in ranks[0])  # the stitched blocks trained too


def test_the_example_runs_alone_and_under_torchrun(tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(EXAMPLE), "--steps", "2", "--batch", "4", "--samples", "16", "--out", str(tmp_path / "ddp")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step    2" in done.stdout and "(2 process(es))" in done.stdout
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)  # one process, in this one: no process group
    path = example.main(["--steps", "2", "--batch", "4", "--samples", "8", "--out", str(tmp_path / "one"),
                         "--no-amp"])
    from safetensors.torch import load_file

    for checkpoint in (path, tmp_path / "ddp" / "model.safetensors"):
        state = load_file(str(checkpoint))
        model = example.make_model()
        assert state.keys() == model.state_dict().keys()  # the stitched network's names, unchanged


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
