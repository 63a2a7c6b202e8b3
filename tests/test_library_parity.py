"""Library blocks that Ultralytics also has: configured alike, Ultralytics' weights transferred with
`bs.transfer_weights`, the two must hold the same tensors under the same names and give the same outputs."""

from __future__ import annotations

import os

import pytest
import torch

from blockstitch.registry import get_block
from blockstitch.transfer import transfer_weights

os.environ.setdefault("YOLO_OFFLINE", "1")
U = pytest.importorskip("ultralytics.nn.modules")

# (ultralytics constructor, its args, our kind, our fields, input shape)
CASES = [
    ("C2f", (16, 24, 2, True), "c2f", {"out_channels": 24, "depth": 2, "shortcut": True}, (1, 16, 13, 9)),
    ("C2f", (16, 24, 1, False, 2), "c2f", {"out_channels": 24, "shortcut": False, "groups": 2}, (1, 16, 13, 9)),
    ("C3", (16, 24, 2), "c3", {"out_channels": 24, "depth": 2}, (1, 16, 13, 9)),
    ("SPPF", (16, 24, 5), "sppf", {"out_channels": 24, "hidden_act": False}, (1, 16, 13, 9)),
    ("SPP", (16, 24), "spp", {"out_channels": 24}, (1, 16, 13, 9)),
    ("ADown", (16, 24), "adown", {"out_channels": 24}, (1, 16, 13, 9)),
    ("SCDown", (16, 32, 3, 2), "scdown", {"out_channels": 32}, (1, 16, 13, 9)),
    ("RepNCSPELAN4", (16, 32, 32, 16, 1), "repncspelan4", {"out_channels": 32, "hidden_channels": 32,
                                                           "inner_channels": 16}, (1, 16, 13, 9)),
    ("C2PSA", (128, 128, 1), "c2psa", {}, (1, 128, 5, 7)),
    ("PSA", (256, 256), "psa_yolov10", {}, (1, 256, 5, 3)),
    ("RepConv", (16, 16, 3, 1, 1, 1, 1, True, True), "repconv", {"out_channels": 16, "identity_bn": True},
     (1, 16, 13, 9)),
    ("RepConv", (16, 24, 3, 2), "repconv", {"out_channels": 24, "stride": 2}, (1, 16, 13, 9)),
    ("GhostConv", (16, 32, 3, 2), "ghost_conv", {"out_channels": 32, "kernel_size": 3, "stride": 2},
     (1, 16, 13, 9)),
    ("C3k2", (16, 24, 2, False, 0.25), "c3k2", {"out_channels": 24, "depth": 2, "expansion": 0.25},
     (1, 16, 13, 9)),
    ("C3k2", (16, 32, 1, True), "c3k2", {"out_channels": 32, "c3k": True}, (1, 16, 13, 9)),
    ("C3k2", (16, 32, 1, False, 0.5, True), "c3k2", {"out_channels": 32, "attn": True}, (1, 16, 13, 9)),
    ("SPPELAN", (16, 24, 8), "sppelan", {"out_channels": 24, "hidden_channels": 8}, (1, 16, 13, 9)),
    ("AConv", (16, 24), "aconv", {"out_channels": 24}, (1, 16, 13, 9)),
    ("C2fCIB", (16, 24, 2, True, True), "c2fcib", {"out_channels": 24, "depth": 2, "shortcut": True,
                                                   "large_kernel": True}, (1, 16, 13, 9)),
    ("C2fCIB", (16, 24), "c2fcib", {"out_channels": 24}, (1, 16, 13, 9)),
]


def _randomise_norms(module: torch.nn.Module) -> None:
    """Random BatchNorm statistics and affine terms, so that a mis-wired norm cannot hide behind identity."""
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


@pytest.mark.parametrize("ref_name, args, kind, fields, shape", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_ultralytics_parity(ref_name: str, args: tuple, kind: str, fields: dict, shape: tuple) -> None:
    torch.manual_seed(0)
    ref = getattr(U, ref_name)(*args).eval()
    _randomise_norms(ref)
    ours = get_block(kind).model_validate(fields).build([shape]).eval()

    report = transfer_weights(ref, ours)
    assert report.complete and not report.by_structure, str(report)  # every tensor matched by its own name
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert sorted(ref_sd) == sorted(our_sd)
    assert all(torch.equal(ref_sd[n], our_sd[n]) for n in ref_sd)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in ours.parameters())

    x = torch.randn(shape)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_parity_detects_a_wrong_weight() -> None:
    """The comparison can fail: one perturbed weight after the transfer changes the output."""
    ref = U.C2f(16, 24, 1, True).eval()
    ours = get_block("c2f").model_validate({"out_channels": 24, "shortcut": True}).build([(1, 16, 9, 7)]).eval()
    transfer_weights(ref, ours)
    with torch.no_grad():
        ours.m[0].cv2.conv.weight[0, 0, 0, 0] += 1.0
        x = torch.randn(1, 16, 9, 7)
        assert not torch.allclose(ref(x), ours(x), atol=1e-5)


@pytest.mark.parametrize("cin, cout", [(16, 16), (16, 24)])
def test_fightingcv_repvgg_parity(cin: int, cout: int) -> None:
    """fightingcv-attention's RepBlock (3×3, 1×1, identity — the paper's order) transfers by structure."""
    repvgg = pytest.importorskip("fightingcv_attention.rep.repvgg")
    torch.manual_seed(0)
    ref = repvgg.RepBlock(cin, cout).eval()
    _randomise_norms(ref)
    ours = get_block("repvgg").model_validate({"out_channels": cout}).build([(1, cin, 13, 9)]).eval()
    report = transfer_weights(ref, ours)
    assert report.complete and len(report.by_structure) == len(ref.state_dict()), str(report)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in ours.parameters())
    x = torch.randn(1, cin, 13, 9)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def test_fightingcv_repvgg_ignores_stride_as_the_card_says() -> None:
    """The documented reference bug: RepBlock(stride=2) does not downsample while training; ours does."""
    repvgg = pytest.importorskip("fightingcv_attention.rep.repvgg")
    x = torch.randn(1, 16, 13, 9)
    assert repvgg.RepBlock(16, 16, stride=2)(x).shape == (1, 16, 13, 9)
    ours = get_block("repvgg").model_validate({"out_channels": 16, "stride": 2}).build([tuple(x.shape)])
    assert ours(x).shape == (1, 16, 7, 5)


def _timm_cases() -> list:
    from timm.models import fasternet, ghostnet, starnet

    return [(starnet.Block(16, mlp_ratio=3), "star_block", {}),
            (fasternet.Partial_conv3(16, 4, "split_cat"), "pconv", {}),
            (ghostnet.GhostModule(16, 32, kernel_size=3, dw_size=3, stride=2), "ghost_conv",
             {"out_channels": 32, "kernel_size": 3, "stride": 2, "cheap_kernel": 3, "act": "relu"})]


@pytest.mark.parametrize("index", range(3), ids=["starnet.Block", "Partial_conv3", "GhostModule"])
def test_timm_parity(index: int) -> None:
    pytest.importorskip("timm")
    torch.manual_seed(0)
    ref, kind, fields = _timm_cases()[index]
    ref.eval()
    _randomise_norms(ref)
    ours = get_block(kind).model_validate(fields).build([X_TIMM]).eval()
    report = transfer_weights(ref, ours)
    assert report.complete, str(report)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in ours.parameters())
    x = torch.randn(X_TIMM)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


X_TIMM = (1, 16, 13, 9)


def test_spd_conv_is_yolov5_focus_and_works_where_focus_fails() -> None:
    torch.manual_seed(0)
    ref = U.Focus(16, 24).eval()
    _randomise_norms(ref)
    ours = get_block("spd_conv").model_validate({"out_channels": 24, "kernel_size": 1}).build([(1, 16, 12, 8)])
    report = transfer_weights(ref, ours.eval())
    assert report.complete and not report.by_structure, str(report)
    x = torch.randn(1, 16, 12, 8)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
        with pytest.raises(RuntimeError):
            ref(torch.randn(1, 16, 13, 9))  # the reference's documented limit
        assert ours(torch.randn(1, 16, 13, 9)).shape == (1, 24, 7, 5)


def test_fightingcv_acnet_parity() -> None:
    acnet = pytest.importorskip("fightingcv_attention.rep.acnet")
    torch.manual_seed(0)
    ref = acnet.ACNet(16, 24).eval()
    _randomise_norms(ref)
    ours = get_block("acb").model_validate({"out_channels": 24}).build([X_TIMM]).eval()
    report = transfer_weights(ref, ours)
    assert report.complete, str(report)
    x = torch.randn(X_TIMM)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("group_size, cout, stride", [(0, 16, 1), (1, 16, 1), (0, 24, 2)])
def test_timm_mobileone_parity(group_size: int, cout: int, stride: int) -> None:
    from timm.models.fastvit import MobileOneBlock

    torch.manual_seed(0)
    ref = MobileOneBlock(16, cout, 3, stride, group_size=group_size, num_conv_branches=2).eval()
    _randomise_norms(ref)
    fields = {"out_channels": cout, "stride": stride, "branches": 2, "act": "gelu",
              "groups": 16 if group_size == 1 else 1}
    ours = get_block("mobileone").model_validate(fields).build([X_TIMM]).eval()
    report = transfer_weights(ref, ours)
    assert report.complete and not report.by_structure, str(report)
    x = torch.randn(X_TIMM)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layer_scale", [0.0, 0.5])
def test_timm_fasternet_block_parity(layer_scale: float) -> None:
    from timm.models.fasternet import MLPBlock

    torch.manual_seed(0)
    ref = MLPBlock(16, 4, 2.0, 0.0, layer_scale).eval()
    _randomise_norms(ref)
    ours = get_block("fasternet_block").model_validate({"layer_scale": layer_scale}).build([X_TIMM]).eval()
    report = transfer_weights(ref, ours)
    assert report.complete, str(report)
    x = torch.randn(X_TIMM)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
