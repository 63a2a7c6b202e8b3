"""Re-parameterisable library blocks fold with `bs.fuse` into one conv (+ activation) with equal eval outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.registry import get_block

CASES = [
    ("repvgg", {"out_channels": 16}),
    ("repvgg", {"out_channels": 16, "groups": 4}),
    ("repvgg", {"out_channels": 24, "stride": 2}),
    ("repconv", {"out_channels": 16, "identity_bn": True}),
    ("repconv", {"out_channels": 24, "stride": 2, "kernel_size": 5}),
    ("dbb", {"out_channels": 16}),
    ("dbb", {"out_channels": 24, "stride": 2, "kernel_size": 5, "act": "none"}),
    ("dilated_reparam", {}),
    ("dilated_reparam", {"kernel_size": 13}),
    ("dilated_reparam", {"kernel_size": 9, "kernels": [3, 3], "dilations": [2, 4]}),
    ("acb", {"out_channels": 16}),
    ("acb", {"out_channels": 24, "stride": 2, "kernel_size": 5, "groups": 4}),
    ("mobileone", {"out_channels": 16, "groups": 16}),
    ("mobileone", {"out_channels": 24, "kernel_size": 1, "branches": 3}),
    ("mobileone", {"out_channels": 16, "stride": 2, "kernel_size": 5, "act": "gelu"}),
    ("c2fcib", {"out_channels": 16, "large_kernel": True}),
]
SHAPE = (2, 16, 13, 9)


def _trained(kind: str, fields: dict) -> nn.Module:
    """Built, with random BatchNorm affine terms, and a few training steps so running statistics are not 0/1."""
    torch.manual_seed(0)
    module = get_block(kind).model_validate(fields).build([SHAPE])
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    module.train()
    with torch.no_grad():
        for _ in range(3):
            module(torch.randn(SHAPE) * 2 + 0.5)
    return module


@pytest.mark.parametrize("kind, fields", CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)])
def test_fuse_is_one_conv_with_equal_outputs(kind: str, fields: dict) -> None:
    module = _trained(kind, fields)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    x = torch.randn(SHAPE)
    fused, report = bs.fuse(module, example=x)
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-5, report
    assert module.training  # the block itself is left as it was, mode and tensors
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    if kind != "c2fcib":  # (a whole C2fCIB keeps its other convs; only its RepVGGDW folds)
        convs = [m for m in fused.modules() if isinstance(m, nn.Conv2d)]
        assert len(convs) == 1 and not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert report.params_saved > 0
    with torch.no_grad():
        torch.testing.assert_close(fused(x), module.eval()(x), atol=1e-5, rtol=0)


def test_fuse_inside_a_network_folds_every_repconv() -> None:
    """RepNCSPELAN4 holds RepConvs inside its RepCSP bottlenecks: bs.fuse finds and folds each one."""
    torch.manual_seed(0)
    net = nn.Sequential(get_block("repvgg").model_validate({"out_channels": 16}).build([SHAPE]),
                        get_block("repncspelan4").model_validate({"out_channels": 16, "depth": 2}).build([SHAPE]))
    net.train()
    with torch.no_grad():
        net(torch.randn(SHAPE))
    fused, report = bs.fuse(net, example=torch.randn(SHAPE))
    assert len(report.fused) == 1 + 2 * 2  # the RepVGG block, and 2 RepCSP × depth 2 RepConvs
    assert report.max_abs_diff <= 1e-5


def test_fuse_folds_the_repvggdw_of_c2fcib() -> None:
    torch.manual_seed(0)
    block = get_block("c2fcib").model_validate({"out_channels": 16, "depth": 2, "shortcut": True,
                                                 "large_kernel": True}).build([SHAPE])
    with torch.no_grad():
        block.train()(torch.randn(SHAPE))
    fused, report = bs.fuse(block, example=torch.randn(SHAPE))
    assert [f.before for f in report.fused] == ["RepVGGDW", "RepVGGDW"]
    assert report.max_abs_diff <= 1e-5


def test_fused_conv_differs_when_a_branch_is_dropped() -> None:
    """The check can fail: a fused conv missing the 1×1 branch does not reproduce the block."""
    module = _trained("repvgg", {"out_channels": 16}).eval()
    with torch.no_grad():
        module.conv2.conv.weight.mul_(0)
        expected = module(torch.ones(SHAPE))
        module.conv2.conv.weight.add_(1)
    fused, _ = bs.fuse(module)
    assert not torch.allclose(fused(torch.ones(SHAPE)), expected, atol=1e-3)
