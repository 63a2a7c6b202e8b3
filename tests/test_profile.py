"""Profiling: MACs by hand on the traps popular counters fall into, and the reference networks' figures."""

from __future__ import annotations

import json

import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision.models as tv
from einops import rearrange
from torch import nn

import blockstitch as bs
from blockstitch.cli import main

B, N, C, H = 2, 50, 64, 4  # batch, tokens, channels, heads
D = C // H


class SDPAAttention(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = k = v = rearrange(x, "b n (h d) -> b h n d", h=H)
        return F.scaled_dot_product_attention(q, k, v)


class MatmulAttention(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = k = v = rearrange(x, "b n (h d) -> b h n d", h=H)
        attn = (q @ k.transpose(-2, -1) * D**-0.5).softmax(dim=-1)  # explicit q kᵀ
        return attn @ v


class EinsumMix(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bnc,bmc->bnm", x, x)


class MHA(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(C, H, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


ATTENTION = 2 * B * H * N * N * D  # q kᵀ and attn v
CASES = [
    ("sdpa", SDPAAttention(), (N, C), ATTENTION),
    ("matmul_attention", MatmulAttention(), (N, C), ATTENTION),
    ("einsum_over_tokens", EinsumMix(), (N, C), B * N * N * C),
    ("linear_over_tokens", nn.Linear(C, 3 * C), (N, C), B * N * C * 3 * C),
    ("mha", MHA(), (N, C), B * N * C * 3 * C + ATTENTION + B * N * C * C),
    ("depthwise_conv", nn.Conv2d(32, 32, 3, padding=1, groups=32), (32, 14, 15), B * 32 * 14 * 15 * 9),
    ("grouped_conv", nn.Conv2d(32, 64, 3, padding=1, groups=4), (32, 14, 14), B * 64 * 14 * 14 * 8 * 9),
    ("transposed_conv", nn.ConvTranspose2d(16, 8, 2, stride=2), (16, 7, 9), B * 16 * 7 * 9 * 8 * 4),
]


@pytest.mark.parametrize("name, module, shape, macs", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_hand_counted_macs(name: str, module: nn.Module, shape: tuple[int, ...], macs: int, mode: str) -> None:
    module.train(mode == "train")
    prof = bs.profile(module, shape, batch=B)
    assert prof.macs == macs and prof.flops == 2 * macs
    assert module.training == (mode == "train"), "profile must restore the module's mode"


def test_real_weights_are_left_untouched() -> None:
    module = MHA().eval()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    bs.profile(module, (N, C), batch=B)
    assert all(torch.equal(before[k], v) and not v.is_meta for k, v in module.state_dict().items())


def test_interpolation_and_norms_are_listed_not_counted() -> None:
    module = nn.Sequential(nn.BatchNorm2d(4), nn.Upsample(scale_factor=2, mode="bilinear"), nn.Softmax(dim=1))
    prof = bs.profile(module, (4, 8, 8))
    assert prof.macs == 0
    assert {"upsample_bilinear2d", "_softmax"} <= set(prof.uncounted)
    assert any("batch_norm" in op for op in prof.uncounted)
    assert prof.uncounted_flops_estimate > 0


# ../shared/REFERENCE.md: params, GMACs (batch 1, standard input)
REFERENCE = {
    "lenet5": (61_706, 0.000417), "alexnet": (61_100_840, 0.714), "vgg16": (138_357_544, 15.47),
    "vgg16_bn": (138_365_992, 15.47), "googlenet": (6_624_904, 1.498), "resnet18": (11_689_512, 1.814),
    "resnet34": (21_797_672, 3.664), "resnet50": (25_557_032, 4.089), "resnet101": (44_549_160, 7.801),
    "resnet152": (60_192_808, 11.51), "resnext50_32x4d": (25_028_904, 4.23), "seresnet50": (28_088_024, 4.09),
    "vit_b_16": (86_567_656, 17.56),
}
LIBRARY = {
    "torchvision:alexnet": (tv.alexnet, "alexnet"), "torchvision:vgg16": (tv.vgg16, "vgg16"),
    "torchvision:googlenet": (lambda: tv.googlenet(aux_logits=False, init_weights=True), "googlenet"),
    "torchvision:resnet50": (tv.resnet50, "resnet50"), "torchvision:resnext50_32x4d": (tv.resnext50_32x4d,
                                                                                      "resnext50_32x4d"),
    "torchvision:vit_b_16": (tv.vit_b_16, "vit_b_16"),
    "timm:vit_base_patch16_224": (lambda: timm.create_model("vit_base_patch16_224"), "vit_b_16"),
    "timm:seresnet50": (lambda: timm.create_model("seresnet50"), "seresnet50"),
    "timm:resnet152": (lambda: timm.create_model("resnet152"), "resnet152"),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_zoo_profile_matches_reference(name: str) -> None:
    params, gmacs = REFERENCE[name]
    prof = bs.profile(name)
    assert prof.params == params
    assert abs(prof.macs / 1e9 - gmacs) <= 0.005 * gmacs
    assert not prof.disagreements


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_library_models_profile_to_the_reference(name: str) -> None:
    builder, ref = LIBRARY[name]
    with torch.device("meta"):
        model = builder()
    prof = bs.profile(model, (3, 224, 224))
    params, gmacs = REFERENCE[ref]
    assert prof.params == params
    assert abs(prof.macs / 1e9 - gmacs) <= 0.005 * gmacs


def test_profile_json_shape(capsys) -> None:
    assert main(["profile", "vit_b_16", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("params", "trainable_params", "macs", "flops", "activation_bytes", "nodes", "uncounted"):
        assert key in data
    assert data["flops"] == 2 * data["macs"]
    node = data["nodes"][2]
    assert set(node) >= {"name", "kind", "in_shape", "out_shape", "params", "macs"}
    assert node["name"] == "blocks.0" and node["in_shape"] == [1, 197, 768]
    assert sum(n["macs"] for n in data["nodes"]) == data["macs"]


def test_markdown_csv_and_compare(capsys) -> None:
    assert main(["profile", "vit_b_16", "--markdown"]) == 0
    md = capsys.readouterr().out
    assert "| blocks.11 | transformer | 1×197×768 | 7,087,872 | 1,453.95 |" in md and "FLOPs = 2 × MACs" in md
    assert main(["profile", "lenet5", "--csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("name,kind,in_shape") and rows[-1].startswith("total,")
    assert main(["profile", "resnet50", "--compare", "cbam_resnet50"]) == 0
    text = capsys.readouterr().out
    assert "+2,532,592" in text and "+9.91%" in text


def test_timm_target_and_torchinfo(capsys) -> None:
    assert main(["profile", "timm:resnet18", "--torchinfo"]) == 0
    text = capsys.readouterr().out
    assert "11,689,512" in text and "Total mult-adds" in text
    assert main(["profile", "timm:resnet5O"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_batch_scales_macs_and_memory_not_allocated() -> None:
    small, big = bs.profile("resnet50"), bs.profile("resnet50", (3, 1024, 1024), batch=64)
    assert big.macs > 1000 * small.macs and big.activation_bytes > 1000 * small.activation_bytes
    assert big.params == small.params


def test_plain_module_needs_an_input_shape() -> None:
    with pytest.raises(bs.SpecError, match="needs input_shape"):
        bs.profile(nn.Linear(3, 4))


def test_plan_and_dict_sources_profile_alike() -> None:
    spec = {"name": "d", "input": [3, 16, 16], "nodes": [{"kind": "conv", "out_channels": 8}, {"kind": "mhsa",
                                                                                               "heads": 2}]}
    from_dict = bs.profile(spec, batch=2)
    from_plan = bs.profile(bs.plan(spec, batch=2))
    assert from_dict.macs == from_plan.macs == bs.plan(spec, batch=2).macs > 0
    assert [n.name for n in from_dict.nodes] == ["conv_0", "mhsa_1_bridge", "mhsa_1"]


def test_a_block_whose_analytic_macs_are_wrong_is_reported() -> None:
    from typing import Literal

    from blockstitch import BlockSpec, register_block

    @register_block
    class Miscounted(BlockSpec):
        """A 1×1 conv whose spec undercounts its MACs by half (a bug the cross-check must catch)."""

        kind: Literal["miscounted_test"] = "miscounted_test"

        def out_shape(self, in_shapes):
            return tuple(in_shapes[0])

        def macs(self, in_shapes):
            b, c, h, w = in_shapes[0]
            return b * c * c * h * w // 2

        def build(self, in_shapes):
            return nn.Conv2d(in_shapes[0][1], in_shapes[0][1], 1)

    prof = bs.profile({"name": "m", "input": [8, 4, 4], "nodes": [{"id": "bad", "kind": "miscounted_test"}]})
    assert prof.disagreements == ["bad: counted 1,024 MACs, its block says 512"]


def test_shared_parameters_are_counted_once() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(100, 16)
            self.out = nn.Linear(16, 100, bias=False)
            self.out.weight = self.embed.weight  # weight tying

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(x)

    prof = bs.profile(Tied(), (5, 16))
    assert prof.params == 1600 and prof.trainable_params == 1600 and prof.macs == 5 * 16 * 100
