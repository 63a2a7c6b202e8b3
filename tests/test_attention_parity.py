"""Parity with fightingcv-attention (External-Attention-pytorch), the collection users copy these modules from:
configured alike, with the reference's weights copied in order, our blocks compute the same outputs. Where the
reference is wrong, the test states it (SimAM is NaN at 1×1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from blockstitch.registry import get_block

pytest.importorskip("fightingcv_attention")


def _ours(kind: str, fields: dict, shape: tuple[int, ...]) -> nn.Module:
    return get_block(kind).model_validate(fields).build([shape])


def _copy_in_order(src: nn.Module, dst: nn.Module) -> None:
    """Copy every parameter and buffer of ``src`` into ``dst`` in registration order (sizes must agree; a
    LayerNorm weight of shape (c,) goes into one of shape (c, 1, 1))."""
    a, b = list(src.state_dict().values()), dst.state_dict()
    assert [t.numel() for t in a] == [t.numel() for t in b.values()], "the two are not configured alike"
    dst.load_state_dict({k: v.reshape(b[k].shape) for k, v in zip(b, a)})


def _randomise(module: nn.Module) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        for name, buf in module.named_buffers():
            if name.endswith("running_var"):
                buf.copy_(torch.rand_like(buf) + 0.5)
            elif name.endswith("running_mean"):
                buf.copy_(torch.randn_like(buf) * 0.1)


def test_simam_matches_and_stays_finite_where_the_reference_is_not() -> None:
    from fightingcv_attention.attention.SimAM import SimAM

    x = torch.randn(2, 16, 13, 9)
    ours, ref = _ours("simam", {}, tuple(x.shape)), SimAM(16)
    torch.testing.assert_close(ours(x), ref(x))
    one = torch.randn(1, 16, 1, 1)
    assert torch.isnan(ref(one)).all() and torch.isfinite(ours(one)).all()  # the reference divides by H·W − 1 = 0


def test_shuffle_attention_matches() -> None:
    from fightingcv_attention.attention.ShuffleAttention import ShuffleAttention

    x = torch.randn(2, 32, 13, 9)
    ref, ours = ShuffleAttention(channel=32, G=4), _ours("shuffle_attn", {"groups": 4}, tuple(x.shape))
    _randomise(ref)
    _copy_in_order(ref, ours)
    torch.testing.assert_close(ours(x), ref(x))


def test_triplet_attention_matches_in_eval() -> None:
    from fightingcv_attention.attention.TripletAttention import TripletAttention

    x = torch.randn(2, 16, 13, 9)
    ref, ours = TripletAttention(), _ours("triplet_attn", {}, tuple(x.shape))
    _randomise(ref)
    _copy_in_order(ref, ours)
    torch.testing.assert_close(ours.eval()(x), ref.eval()(x))


@pytest.mark.parametrize("layout", ["parallel", "sequential"])
def test_polarized_self_attention_matches(layout: str) -> None:
    from fightingcv_attention.attention import PolarizedSelfAttention as psa

    x = torch.randn(2, 16, 13, 9)
    ref = (psa.ParallelPolarizedSelfAttention if layout == "parallel" else psa.SequentialPolarizedSelfAttention)(16)
    ours = _ours("psa_polarized", {"layout": layout}, tuple(x.shape))
    _randomise(ref)
    _copy_in_order(ref, ours)
    torch.testing.assert_close(ours(x), ref(x))


def test_criss_cross_matches() -> None:
    from fightingcv_attention.attention.CrissCrossAttention import CrissCrossAttention

    x = torch.randn(2, 16, 13, 9)
    ref, ours = CrissCrossAttention(16), _ours("criss_cross", {}, tuple(x.shape))
    _randomise(ref)
    names = {"query_conv": "q", "key_conv": "k", "value_conv": "v", "gamma": "residual.gamma"}
    state = {names[k.partition(".")[0]] + k[len(k.partition(".")[0]):]: v for k, v in ref.state_dict().items()}
    ours.load_state_dict({k: v.reshape(ours.state_dict()[k].shape) for k, v in state.items()})
    torch.testing.assert_close(ours(x), ref(x))
