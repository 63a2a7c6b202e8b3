"""`verify=False` (what `blockstitch check` does by default) gives the same plan as the meta run: it trusts the
shape rules of blockstitch's own blocks (pinned in test_blocks.py) and still runs every other block on meta."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Literal

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch import BlockSpec, register_block
from blockstitch.assemble import zoo_names
from blockstitch.cli import main
from blockstitch.errors import BlockstitchError
from blockstitch.meta import on_meta
from blockstitch.networks import is_edit_source

PLANNED = [name for name in zoo_names() if not is_edit_source(name)]


@pytest.mark.parametrize("name", PLANNED)
def test_trusted_plan_is_the_verified_plan(name: str) -> None:
    fast, full = bs.plan(name, verify=False), bs.plan(name)
    assert fast.records() == full.records()
    assert (fast.params, fast.macs, fast.output_shapes()) == (full.params, full.macs, full.output_shapes())


class Shrinker(BlockSpec):
    """A block registered outside blockstitch whose rule is wrong: it says 'same shape', its module halves H, W."""

    kind: Literal["shrinker_test"] = "shrinker_test"

    def out_shape(self, in_shapes):  # type: ignore[no-untyped-def]
        return tuple(in_shapes[0])

    def macs(self, in_shapes):  # type: ignore[no-untyped-def]
        return 0

    def build(self, in_shapes):  # type: ignore[no-untyped-def]
        return nn.MaxPool2d(2)


SPEC = {"name": "s", "input": [3, 8, 8], "nodes": [{"id": "c", "kind": "conv", "out_channels": 4},
                                                  {"id": "bad", "kind": "shrinker_test"}]}


@pytest.fixture
def shrinker():  # type: ignore[no-untyped-def]
    """Registered for one test only (the schema and catalogue tests compare against the registry)."""
    from blockstitch import registry

    register_block(Shrinker)
    yield Shrinker
    registry._REGISTRY.pop("shrinker_test", None)


def test_blocks_from_elsewhere_still_run_on_meta(shrinker: type[BlockSpec]) -> None:
    ran: list[str] = []

    @contextmanager
    def observe(name: str):  # type: ignore[no-untyped-def]
        ran.append(name)
        yield

    with pytest.raises(BlockstitchError, match=r"bug in block 'shrinker_test'.*1×4×4×4"):
        bs.plan(SPEC, verify=False, observe=observe)
    assert ran == ["bad"]  # the conv's rule is trusted; the foreign rule is checked, and caught
    ran.clear()
    with pytest.raises(BlockstitchError):
        bs.plan(SPEC, observe=observe)
    assert ran == ["c", "bad"]


def test_check_prints_the_same_with_and_without_verify(capsys: pytest.CaptureFixture[str]) -> None:
    outs = []
    for extra in ([], ["--verify"]):
        assert main(["check", "swin_t", "--input", "3,97,131", "--json", *extra]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0] == outs[1]


def test_on_meta_skips_initialisers_but_not_shapes() -> None:
    with on_meta():
        conv = nn.Conv2d(3, 8, 3)
        pos = nn.Parameter(torch.empty(1, 5, 8))
        nn.init.trunc_normal_(pos, std=0.02)
        nn.init.normal_(tensor=pos, std=0.02)  # by keyword too
        grown = torch.zeros(2, 3).unsqueeze_(0)  # shape-changing in-place ops still run
    assert conv.weight.is_meta and conv.weight.shape == (8, 3, 3, 3) and pos.shape == (1, 5, 8)
    assert grown.shape == (1, 2, 3) and grown.is_meta
    real = torch.zeros(3)
    with on_meta():
        real.add_(1)  # real tensors are written as usual
    assert real.tolist() == [1.0, 1.0, 1.0]
