"""Token-mixer and spatial-context library blocks against the modules of timm, fightingcv-attention and
ultralytics: configured alike, weights moved with `transfer_weights`, the same parameter count and the same
eval outputs (≤ 1e-5). Where the reference has a bug, the test pins the difference the card documents."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.registry import get_block

os.environ.setdefault("YOLO_OFFLINE", "1")


def _ours(kind: str, fields: dict, shape: tuple[int, ...]) -> nn.Module:
    return get_block(kind).model_validate(fields).build([shape])


def _randomise(module: nn.Module) -> None:
    """Non-default values everywhere (layer scales of 1e-5 or zero-init gates would hide a wiring mistake)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "running_var" in name
                        else torch.randn(t.shape, generator=g) * 0.2)


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def check_parity(reference: nn.Module, ours: nn.Module, shape: tuple[int, ...],
                 to_ref: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
                 from_ref: Callable[[torch.Tensor], torch.Tensor] = lambda y: y, atol: float = 1e-5) -> torch.Tensor:
    """Transfer weights reference → ours; assert equal params and outputs; return our output."""
    _randomise(reference)
    report = bs.transfer_weights(reference, ours)
    assert report.complete, str(report)
    assert _params(reference) == _params(ours)
    reference.eval(), ours.eval()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want, got = from_ref(reference(to_ref(x))), ours(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=atol, rtol=1e-4)
    return got


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def nchw(y: torch.Tensor) -> torch.Tensor:
    return y.permute(0, 3, 1, 2)


def tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)


# ---- timm ------------------------------------------------------------------------------------------------
def test_focal_modulation_matches_timm() -> None:
    from timm.models.focalnet import FocalModulation

    ref = FocalModulation(16, focal_window=3, focal_level=2, focal_factor=2)
    check_parity(ref, _ours("focal_modulation", {}, (1, 16, 7, 5)), (1, 16, 7, 5))


def test_poolformer_matches_timm_metaformer_block() -> None:
    from timm.layers import GroupNorm1
    from timm.models.metaformer import MetaFormerBlock, Pooling

    ref = MetaFormerBlock(16, token_mixer=Pooling, mlp_act=nn.GELU, mlp_bias=True, norm_layer=GroupNorm1,
                          layer_scale_init_value=1e-5)
    check_parity(ref, _ours("poolformer", {}, (1, 16, 7, 5)), (1, 16, 7, 5))


def test_swiftformer_attn_matches_timm() -> None:
    from timm.models.swiftformer import EfficientAdditiveAttention

    ref = EfficientAdditiveAttention(in_dims=16, token_dim=16, num_heads=1)
    check_parity(ref, _ours("swiftformer_attn", {}, (1, 16, 7, 5)), (1, 16, 7, 5))


def test_efficientvit_msla_matches_timm_litemla() -> None:
    from timm.models.efficientvit_mit import LiteMLA

    ref = LiteMLA(16, 16, dim=8, scales=(3, 5))
    check_parity(ref, _ours("efficientvit_msla", {"scales": [3, 5], "residual": False}, (1, 16, 7, 5)), (1, 16, 7, 5))


# ---- fightingcv-attention ----------------------------------------------------------------------------------
def test_external_attn_matches_fightingcv_on_tokens() -> None:
    from fightingcv_attention.attention.ExternalAttention import ExternalAttention

    shape = (1, 16, 7, 5)
    check_parity(ExternalAttention(16, S=8), _ours("external_attn", {"slots": 8}, shape), shape,
                 to_ref=tokens, from_ref=lambda y: y.transpose(1, 2).reshape(shape))


def test_vip_matches_fightingcv_up_to_its_branch_swap() -> None:
    """fightingcv mixes the branches as c·a[0] + w·a[1] + h·a[2]; the paper (and this block) h·a[0] + w·a[1]
    + c·a[2]. With the same weights the outputs differ; swapping the reweighting rows of h and c closes it."""
    from fightingcv_attention.attention.ViP import WeightedPermuteMLP

    shape = (1, 32, 4, 4)  # H = W = segments: the reference's Linear(C, C) along H and W
    ref, ours = WeightedPermuteMLP(32, seg_dim=4), _ours("vip", {"segments": 4, "size": [4, 4]}, shape)
    _randomise(ref)
    bs.transfer_weights(ref, ours)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    ref.eval(), ours.eval()
    with torch.no_grad():
        want = nchw(ref(nhwc(x)))
        assert not torch.allclose(ours(x), want, atol=1e-3)
        fc2 = ours.reweight[2]
        for p in (fc2.weight, fc2.bias):  # rows are (channel, branch): swap branch 0 (h) and 2 (c)
            p.copy_(p.view(32, 3, -1)[:, [2, 1, 0]].reshape(p.shape))
        torch.testing.assert_close(ours(x), want, atol=1e-5, rtol=1e-4)


def _fixed_shift(first: tuple[int, int, int, int]):
    from blockstitch.blocks.library.mlp_mixers import _shift

    return lambda x: _shift(x, first)


def test_s2mlp_matches_fightingcv_with_out_of_place_shifts(monkeypatch: pytest.MonkeyPatch) -> None:
    import fightingcv_attention.attention.S2Attention as ref_mod

    shape = (1, 512, 5, 7)  # the reference's split attention only works at 512 channels
    monkeypatch.setattr(ref_mod, "spatial_shift1", _fixed_shift((1, -1, 2, -2)))
    monkeypatch.setattr(ref_mod, "spatial_shift2", _fixed_shift((2, -2, 1, -1)))
    # 512-wide sums: another CPU's kernels (an H200 host's Xeon) differ by up to 3e-4 here, relative 1e-3
    check_parity(ref_mod.S2Attention(512), _ours("s2mlp", {}, shape), shape, to_ref=lambda x: x, atol=1e-3)


def test_fightingcv_s2_shift_is_not_a_shift() -> None:
    """The documented bug: an in-place copy between overlapping views repeats row 0 instead of shifting."""
    from fightingcv_attention.attention.S2Attention import spatial_shift1

    ramp = torch.arange(6.0).view(1, 6, 1, 1).expand(1, 6, 2, 8).contiguous()
    shifted = _fixed_shift((1, -1, 2, -2))(ramp)
    assert shifted[0, :, 0, 0].tolist() == [0, 0, 1, 2, 3, 4]
    if torch.equal(spatial_shift1(ramp.clone()), shifted):
        pytest.skip("this torch copies overlapping views like memmove; the reference shift is right here")


def test_gmlp_matches_fightingcv_layer() -> None:
    from fightingcv_attention.mlp.g_mlp import gMLP

    shape = (1, 16, 5, 3)
    ref = gMLP(num_tokens=10, len_sen=15, dim=16, d_ff=32, num_layers=1).gmlp[0]
    check_parity(ref, _ours("gmlp", {"ffn_ratio": 2, "size": [5, 3]}, shape), shape, to_ref=tokens,
                 from_ref=lambda y: y.transpose(1, 2).reshape(shape))


def test_bot_mhsa_matches_timm_at_build_size_and_runs_at_others() -> None:
    from timm.layers.bottleneck_attn import BottleneckAttn

    shape = (1, 16, 7, 5)
    ours = _ours("bot_mhsa", {}, shape)
    check_parity(BottleneckAttn(16, 16, feat_size=(7, 5), num_heads=4), ours, shape)
    assert ours(torch.randn(1, 16, 9, 11)).shape == (1, 16, 9, 11)  # timm asserts the build size here


@pytest.mark.parametrize("stride", [1, 2])
def test_outlook_attn_matches_timm_volo(stride: int) -> None:
    from timm.models.volo import OutlookAttention

    shape = (1, 16, 7, 5)
    ref = OutlookAttention(16, num_heads=4, stride=stride)
    check_parity(ref, _ours("outlook_attn", {"stride": stride}, shape), shape, to_ref=nhwc, from_ref=nchw)


# ---- ultralytics -------------------------------------------------------------------------------------------
def test_aifi_matches_ultralytics_at_non_square_size() -> None:
    from ultralytics.nn.modules import AIFI

    shape = (1, 16, 7, 5)
    check_parity(AIFI(16, 32, num_heads=4), _ours("aifi", {"hidden": 32, "heads": 4}, shape), shape)


def test_aifi_position_encodes_row_then_column() -> None:
    from blockstitch.blocks.library.vision_attention import sincos_2d

    pos = sincos_2d(3, 4, 8, 10000.0, torch.device("cpu")).view(3, 4, 8)
    assert torch.equal(pos[:, :1, :4].expand(3, 4, 4), pos[..., :4])  # first half: the row only
    assert torch.equal(pos[:1, :, 4:].expand(3, 4, 4), pos[..., 4:])  # second half: the column only


@pytest.mark.parametrize("stride", [1, 2])
def test_dat_matches_fightingcv_dattention_at_build_size(stride: int) -> None:
    from fightingcv_attention.attention.DAT import DAttentionBaseline

    shape = (1, 16, 7, 5)
    ref = DAttentionBaseline((7, 5), (7, 5), n_heads=4, n_head_channels=4, n_groups=2, attn_drop=0, proj_drop=0,
                             stride=stride, offset_range_factor=2, use_pe=True, dwc_pe=False, no_off=False,
                             fixed_pe=False, stage_idx=2)
    ours = _ours("dat", {"heads": 4, "groups": 2, "stride": stride, "offset_kernel": 5}, shape)
    check_parity(ref, ours, shape, from_ref=lambda out: out[0])
    assert ours(torch.randn(1, 16, 9, 12)).shape == (1, 16, 9, 12)  # the reference's bias table fails here


def test_mobilevit_matches_timm_block_at_a_ragged_size() -> None:
    from functools import partial

    from timm.layers import ConvNormAct
    from timm.models.byobnet import LayerFn
    from timm.models.mobilevit import MobileVitBlock

    layers = LayerFn(conv_norm_act=partial(ConvNormAct, act_layer=nn.SiLU), act=nn.SiLU)
    ref = MobileVitBlock(16, 16, transformer_dim=24, transformer_depth=2, patch_size=2, num_heads=4, layers=layers)
    shape = (1, 16, 7, 5)  # not a multiple of the patch: both resize to 8×6 and back
    check_parity(ref, _ours("mobilevit", {"dim": 24, "depth": 2}, shape), shape)
