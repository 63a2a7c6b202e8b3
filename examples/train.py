"""Train a stitched network: one process, or several with DDP — the same file, unchanged.

    python examples/train.py --steps 50                              # one process (CPU, or one GPU)
    torchrun --nproc_per_node 2 examples/train.py --steps 50         # DDP: gloo on CPU, NCCL on GPUs

The network is a small ResNet composed from a spec, with CBAM stitched after each stage as an identity at
first (``identity_init``). Data is torchvision's ``FakeData`` (random images made on the fly, nothing
downloaded); swap in your own dataset. Mixed precision is on where it pays (CUDA: bfloat16 if supported, else
float16 with a gradient scaler); ``--amp`` forces it (bfloat16 on CPU). Weights are saved with safetensors on
rank 0 and ``--resume`` loads them. Under DDP each process sees ``--batch`` samples per step (a global batch of
``--batch`` × processes); BatchNorm normalises per process (``--sync-bn`` makes it global on GPUs).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torchvision
from safetensors.torch import load_model, save_model
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

import blockstitch as bs

SPEC: dict[str, Any] = {
    "name": "small_resnet",
    "input": [3, 32, 32],
    "defaults": {"norm": "batchnorm", "act": "relu"},
    "nodes": [
        {"id": "stem", "kind": "conv", "out_channels": 32},
        {"id": "layer1", "kind": "basic", "out_channels": 32, "repeat": 2},
        {"id": "layer2", "kind": "basic", "out_channels": 64, "stride": 2, "repeat": 2},
        {"id": "layer3", "kind": "basic", "out_channels": 128, "stride": 2, "repeat": 2},
        {"id": "pool", "kind": "adaptive_avgpool", "output_size": 1},
        {"id": "flatten", "kind": "flatten"},
        {"id": "fc", "kind": "linear", "out_features": 10},
    ],
}
"""A ResNet for 32×32 images, 10 classes."""


def make_model(norm: str = "batchnorm") -> nn.Module:
    """The spec's network with CBAM stitched after each stage (as the identity at first)."""
    model = bs.build({**SPEC, "defaults": {"norm": norm, "act": "relu"}})
    stitched, report = bs.stitch(model, insert=[{"after": "layer*", "block": {"kind": "cbam"}, "identity_init": True}])
    return stitched


def setup() -> tuple[int, int, torch.device]:
    """(rank, world size, device): a process group when started by torchrun, else a single process."""
    if "RANK" not in os.environ:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    local = int(os.environ.get("LOCAL_RANK", 0))
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", 1)))
    # one GPU per process, or none: more processes than GPUs (two ranks on a one-GPU machine) train on the CPU
    cuda = torch.cuda.is_available() and torch.cuda.device_count() >= per_node
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if cuda:
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def autocast_for(device: torch.device, amp: bool | None) -> tuple[Any, torch.amp.GradScaler | None]:
    """(autocast context factory, gradient scaler or None) — AMP on CUDA by default, on CPU only if asked."""
    use = device.type == "cuda" if amp is None else amp
    if not use:
        return contextlib.nullcontext, None
    bf16 = device.type == "cpu" or torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float16
    scaler = None if bf16 else torch.amp.GradScaler("cuda")
    return (lambda: torch.autocast(device.type, dtype=dtype)), scaler


def main(argv: list[str] | None = None) -> Path:
    """Train; return the checkpoint path."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=32, help="samples per process per step")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--samples", type=int, default=2048, help="size of the FakeData set")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None, help="default: on CUDA only")
    p.add_argument("--sync-bn", action="store_true", help="global BatchNorm statistics across GPUs")
    p.add_argument("--out", type=Path, default=Path("checkpoints"))
    p.add_argument("--resume", action="store_true", help="start from OUT/model.safetensors")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    args = p.parse_args(argv)

    rank, world, device = setup()
    torch.manual_seed(0)  # every process builds the same initial weights (DDP also broadcasts rank 0's)
    model = make_model()
    checkpoint = args.out / "model.safetensors"
    if args.resume:
        load_model(model, checkpoint)
    model.to(device)
    if world > 1 and args.sync_bn and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world > 1 else model

    data = torchvision.datasets.FakeData(size=args.samples, image_size=(3, 32, 32), num_classes=10,
                                         transform=torchvision.transforms.ToTensor())
    sampler = DistributedSampler(data, world, rank, shuffle=True, seed=0) if world > 1 else None
    loader = DataLoader(data, batch_size=args.batch, sampler=sampler, shuffle=sampler is None, drop_last=True,
                        num_workers=args.workers, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    autocast, scaler = autocast_for(device, args.amp)

    net.train()
    step, epoch, start = 0, 0, time.perf_counter()
    while step < args.steps:
        if sampler is not None:
            sampler.set_epoch(epoch)  # a different shuffle each epoch, the same on every process
        for images, labels in loader:
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            with autocast():
                loss = nn.functional.cross_entropy(net(images), labels)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()  # under DDP, gradients are averaged across processes here
                optimizer.step()
            step += 1
            if rank == 0 and (step % 10 == 0 or step == args.steps):
                rate = step * args.batch * world / (time.perf_counter() - start)
                print(f"step {step:4d}  loss {loss.item():.4f}  {rate:.0f} samples/s  ({world} process(es))")
            if step == args.steps:
                break
        epoch += 1

    if rank == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        save_model(model, str(checkpoint), metadata={"steps": str(step), "spec": SPEC["name"]})
        print(f"saved {checkpoint}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return checkpoint


if __name__ == "__main__":
    main()
