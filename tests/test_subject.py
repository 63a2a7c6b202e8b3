"""The Subject: a source resolved once, then handed to every tool; block kinds and classes give factories."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import torch
from torch import nn

import blockstitch.sources as sources
from blockstitch.bench import bench_blocks
from blockstitch.errors import SpecError
from blockstitch.graph import graph_record
from blockstitch.networks import build, plan
from blockstitch.profile import profile
from blockstitch.subject import subject


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the one resolver was asked about each source."""
    seen: Counter[str] = Counter()
    real = sources.resolve

    def counting(source: Any, *args: Any, **kwargs: Any) -> sources.Resolved:
        seen[str(source)] += 1
        return real(source, *args, **kwargs)

    monkeypatch.setattr(sources, "resolve", counting)
    return seen


@pytest.mark.parametrize("tool", [lambda s: profile(s), lambda s: graph_record(s, depth=1),
                                  lambda s: bench_blocks(s, budget_s=0.001), lambda s: plan(s),
                                  lambda s: build(s, device="meta")],
                         ids=["profile", "graph", "bench_blocks", "plan", "build"])
def test_each_tool_resolves_its_source_once(tool: Any, resolved: Counter[str]) -> None:
    tool("lenet5")
    assert resolved["lenet5"] == 1, resolved


def test_an_edit_spec_is_resolved_once_by_profile_and_by_build(resolved: Counter[str]) -> None:
    p = profile("cbam_resnet50", (3, 32, 32))
    assert resolved["cbam_resnet50"] == 1
    model = build("cbam_resnet50", device="meta")
    assert resolved["cbam_resnet50"] == 2 and p.params == sum(t.numel() for t in model.parameters())
    assert p.params == subject("cbam_resnet50").report.params_after


def test_a_subject_given_is_not_resolved_again(resolved: Counter[str]) -> None:
    found = subject("lenet5")
    assert profile(found).macs == profile("lenet5").macs
    assert resolved["lenet5"] == 2  # once for the subject, once for the plain name


def test_a_block_kind_gives_a_factory_whose_fields_are_checked() -> None:
    factory, follows = subject("se").factory({"reduction": 4})
    block = factory((1, 32, 8, 8), "b c h w", 32)
    assert follows and block(torch.randn(1, 32, 8, 8)).shape == (1, 32, 8, 8)
    with pytest.raises(SpecError, match="--arg reduction"):
        subject("se").factory({"reduction": "many"})


def test_a_class_gives_a_factory_whose_channels_follow_and_a_factory_is_taken_as_it_is() -> None:
    factory, follows = subject(nn.Conv2d).factory({"kernel_size": 3, "padding": 1})
    assert follows and factory((1, 12, 5, 5), "b c h w", 12).out_channels == 12
    fixed, follows = subject(nn.Conv2d).factory({"in_channels": 4, "out_channels": 6, "kernel_size": 1})
    assert not follows and fixed((1, 12, 5, 5), "b c h w", 12).in_channels == 4

    def make(shape: Any, layout: str, channels: int) -> nn.Module:
        return nn.Identity()

    assert subject(make).factory() == (make, True)
    with pytest.raises(SpecError, match="has no factory"):
        subject("lenet5").factory()
