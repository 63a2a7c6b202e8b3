"""What the conv, sampling and fusion blocks of the library compute, checked against the maths they reduce to
in special cases (zero offsets, uniform kernels, equal kernels), and the fusion blocks wired by `from:` lists."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import blockstitch as bs
from blockstitch.blocks.library.conv_wavelet import haar_idwt
from blockstitch.blocks.library.down import haar_dwt
from blockstitch.blocks.library.fusion import resize_to
from blockstitch.registry import get_block
from blockstitch.transfer import transfer_weights

X = (1, 16, 13, 9)


def _build(kind: str, shape: tuple = X, **fields):
    torch.manual_seed(0)
    return get_block(kind).model_validate(fields).build([shape])


def test_dysample_at_zero_offsets_is_bilinear_upsampling() -> None:
    module = _build("dysample")
    torch.nn.init.zeros_(module.offset.weight)
    x = torch.randn(X)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=0)
    torch.nn.init.normal_(module.offset.weight)  # and learned offsets do move the samples
    assert not torch.allclose(module(x), expected, atol=1e-3)


def test_carafe_with_uniform_kernels_is_an_average_of_the_neighbourhood() -> None:
    module = _build("carafe", compressed_channels=8)
    torch.nn.init.zeros_(module.enc.weight)
    torch.nn.init.zeros_(module.enc.bias)
    x = torch.randn(X)
    expected = F.interpolate(F.avg_pool2d(x, 5, 1, 2, count_include_pad=True), scale_factor=2, mode="nearest")
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=0)


def test_haar_transform_is_orthonormal_and_inverted_at_odd_sizes() -> None:
    x = torch.randn(X)
    bands = haar_dwt(x)
    assert bands.shape == (1, 64, 7, 5)
    torch.testing.assert_close(bands.square().sum(), x.square().sum())  # energy kept: an orthonormal basis
    torch.testing.assert_close(haar_idwt(bands, 13, 9), x, atol=1e-5, rtol=0)


def test_dcnv2_at_zero_offsets_is_half_a_plain_conv() -> None:
    module = _build("dcnv2", out_channels=8, act="none").eval()
    module.bn = torch.nn.Identity()
    x = torch.randn(X)
    torch.testing.assert_close(module(x), 0.5 * F.conv2d(x, module.weight, padding=1), atol=1e-5, rtol=0)


def test_dynamic_conv_with_equal_kernels_is_that_conv() -> None:
    module = _build("dynamic_conv", out_channels=8, act="none").eval()
    with torch.no_grad():
        module.weight.copy_(module.weight[:1].expand_as(module.weight))
    module.bn = torch.nn.Identity()
    x = torch.randn(X)
    expected = F.conv2d(x, module.weight[0].view(8, 16, 3, 3), padding=1)
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["dynamic_conv", "odconv"])
def test_per_sample_kernels_keep_samples_apart(kind: str) -> None:
    """Folding the batch into conv groups must not mix samples: a batch equals its samples run one by one."""
    module = _build(kind, out_channels=8, stride=2).eval()
    x = torch.randn(3, *X[1:])
    with torch.no_grad():
        together = module(x)
        apart = torch.cat([module(x[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, apart, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["pconv", "wtconv", "star_block", "fasternet_block"])
def test_identity_init_is_exact(kind: str) -> None:
    spec = get_block(kind).model_validate({})
    module = spec.build([X])
    x = torch.randn(X)
    assert not torch.equal(module(x), x)
    assert spec.init_identity(module)
    assert torch.equal(module(x), x)


def test_sppf_equals_spp_5_9_13_with_the_same_weights() -> None:
    """SPPF's three chained 5×5 pools are SPP's 5, 9 and 13 pools (the reason SPPF exists)."""
    sppf = _build("sppf", out_channels=24).eval()
    spp = _build("spp", out_channels=24).eval()
    transfer_weights(sppf, spp)
    x = torch.randn(X)
    with torch.no_grad():
        torch.testing.assert_close(sppf(x), spp(x))


def test_resize_rule_pools_down_and_repeats_up() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert resize_to(x, 2, 2).flatten().tolist() == [5.0, 7.0, 13.0, 15.0]  # 2×2 max pools
    assert resize_to(x[..., :2, :2], 4, 4)[0, 0, :, 0].tolist() == [0.0, 0.0, 4.0, 4.0]  # nearest


NECK = """
name: fusion_neck
input: [3, 45, 37]
nodes:
  - {id: p3, kind: conv, out_channels: 16, stride: 2}
  - {id: p4, kind: adown, out_channels: 16}
  - {id: p5, kind: scdown, out_channels: 32}
  - {id: top, kind: sppf, out_channels: 16, from: p5}
  - {id: up, kind: dysample, from: top}
  - {id: bifpn, kind: bifpn_fusion, from: [p4, up, p3]}
  - {id: cga, kind: cga_fusion, from: [bifpn, p4]}
  - {id: asff, kind: asff_fusion, out_channels: 24, from: [p3, cga, p5]}
"""


def test_fusion_blocks_take_from_lists_in_a_network(write_spec) -> None:
    plan = bs.plan(write_spec(NECK))
    assert plan.step("p4").out.shape == (1, 16, 11, 9)
    assert plan.step("bifpn").out.shape == (1, 16, 11, 9)  # the first input's size
    assert plan.step("asff").out.shape == (1, 24, 23, 19)
    model = bs.build(plan)
    out = model(torch.randn(1, 3, 45, 37))
    assert tuple(out.shape) == (1, 24, 23, 19)
    out.mean().backward()


def test_bifpn_fusion_refuses_unequal_channels(write_spec) -> None:
    bad = NECK.replace("from: [p4, up, p3]", "from: [p4, p5]")
    with pytest.raises(bs.BlockstitchError, match="same batch and channels"):
        bs.plan(write_spec(bad))


STRIDED = [("repconv", {"out_channels": 24, "stride": 2}), ("dbb", {"out_channels": 16, "stride": 2}),
           ("dsconv", {"out_channels": 24, "stride": 2}), ("ghost_conv", {"out_channels": 24, "stride": 2}),
           ("gsconv", {"out_channels": 24, "stride": 2, "kernel_size": 3}),
           ("dcnv2", {"out_channels": 24, "stride": 2}), ("dynamic_conv", {"out_channels": 24, "stride": 2}),
           ("odconv", {"out_channels": 24, "stride": 2, "groups": 4}),
           ("rfaconv", {"out_channels": 24, "stride": 2}), ("scconv_2020", {"out_channels": 24, "stride": 2}),
           ("scdown", {"out_channels": 24, "stride": 3, "kernel_size": 5}), ("hwd", {"out_channels": 24}),
           ("spd_conv", {"out_channels": 24, "scale": 3})]


@pytest.mark.parametrize("kind, fields", STRIDED, ids=[k for k, _ in STRIDED])
def test_strided_shape_and_macs_match_meta(kind: str, fields: dict) -> None:
    """The registry-wide test runs the examples at stride 1 (so identity init is stitched too): here stride > 1."""
    from torch.utils.flop_counter import FlopCounterMode

    spec = get_block(kind).model_validate(fields)
    with torch.device("meta"):
        module = spec.build([X]).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = module(torch.empty(X, device="meta"))
    assert tuple(out.shape) == spec.out_shape([X]) and out.shape[-1] < X[-1]
    assert abs(spec.macs([X]) - counter.get_total_flops() / 2) <= 0.01 * counter.get_total_flops() / 2
