"""The zoo is identical to its references: parameters exact, MACs within 0.5%, and after transfer_weights the
same outputs (float32, relative error ≤ 1e-4). References are built live, with random weights."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import timm
import torch
import torchvision.models as tv
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import blockstitch as bs
from blockstitch.assemble import zoo_names
from blockstitch.cli import main

REFERENCES: dict[str, Callable[[], nn.Module]] = {
    "alexnet": tv.alexnet,
    "vgg16": tv.vgg16,
    "vgg16_bn": tv.vgg16_bn,
    "googlenet": lambda: tv.googlenet(aux_logits=False, init_weights=True),
    "resnet18": tv.resnet18,
    "resnet34": tv.resnet34,
    "resnet50": tv.resnet50,
    "resnet101": tv.resnet101,
    "resnet152": tv.resnet152,
    "resnext50_32x4d": tv.resnext50_32x4d,
    "vit_b_16": tv.vit_b_16,
    "seresnet50": lambda: timm.create_model("seresnet50"),
}
# ../shared/REFERENCE.md, for networks no library builds: params, GMACs (None = not documented)
DOCUMENTED = {"lenet5": (61_706, 0.000417), "unet": (31_037_698, None)}
BY_NAME = {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "seresnet50"}
SMALL_INPUT = {"vit_b_16": (3, 224, 224)}  # the position embedding fixes ViT's size; the rest run at 64×64


def _meta(builder: Callable[[], nn.Module]) -> nn.Module:
    with torch.device("meta"):
        return builder()


def _count_macs(model: nn.Module, shape: tuple[int, ...]) -> float:
    model.train()  # nn.MultiheadAttention's eval fast path is invisible to the flop counter
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, *shape, device="meta"))
    return counter.get_total_flops() / 2


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Fill every float tensor with random values (zero-initialised heads would make a comparison vacuous)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.dtype.is_floating_point:
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.dim() >= 2:
                t.copy_(torch.randn(t.shape, generator=g) / math.sqrt(t.numel() / t.shape[0]))
            elif name.endswith("weight"):
                t.copy_(1 + 0.1 * torch.randn(t.shape, generator=g))
            else:
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
    return model


def test_every_zoo_entry_has_a_reference() -> None:
    from test_zoo_modern import REFERENCES as MODERN  # MobileNet … DeepLabV3: tests/test_zoo_modern.py

    # cbam_resnet50 and unet_resnet34 have no library twin; tests/test_stitch.py checks them
    assert set(zoo_names()) == set(REFERENCES) | set(DOCUMENTED) | set(MODERN) | {"cbam_resnet50", "unet_resnet34"}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_params_equal_reference(name: str) -> None:
    ref = _meta(REFERENCES[name])
    assert bs.plan(name).params == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_macs_match_reference(name: str) -> None:
    plan = bs.plan(name)
    ref_macs = _count_macs(_meta(REFERENCES[name]), plan.input.shape[1:])
    assert abs(plan.macs - ref_macs) <= 0.005 * ref_macs, f"{plan.macs} vs reference {ref_macs}"
    # and the plan's analytic total is what the built module does
    assert abs(_count_macs(bs.build(plan, device="meta"), plan.input.shape[1:]) - plan.macs) <= 0.005 * plan.macs


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_documented_figures(name: str) -> None:
    params, gmacs = DOCUMENTED[name]
    plan = bs.plan(name)
    assert plan.params == params
    if gmacs is not None:
        assert abs(plan.macs / 1e9 - gmacs) <= 0.005 * gmacs


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_transfer_weights_reproduces_the_reference(name: str) -> None:
    torch.manual_seed(0)
    ref = randomize(REFERENCES[name]()).eval()
    shape = SMALL_INPUT.get(name, (3, 64, 64))
    model = bs.build(name, shape).eval()
    report = bs.transfer_weights(ref, model)
    assert report.complete and report.elements >= sum(p.numel() for p in ref.parameters())
    if name in BY_NAME:
        assert not report.by_structure
        fresh = bs.build(name, shape)
        fresh.load_state_dict(ref.state_dict(), strict=True)  # the names are torchvision's / timm's
    x = torch.randn(2, *shape)
    with torch.no_grad():
        expected, got = ref(x), model(x)
    assert expected.abs().max() > 0
    assert ((got - expected).abs().max() / expected.abs().max()).item() <= 1e-4


def test_transfer_refuses_a_different_architecture() -> None:
    model = bs.build("resnet34", device="meta")
    with pytest.raises(bs.TransferError, match=r"(?s)0 source and 96 destination tensors have no counterpart.*layer1\.2"):
        bs.transfer_weights(_meta(tv.resnet18), model)
    with pytest.raises(bs.TransferError, match=r"differ in shape.*fc\.weight: source 10×512, destination 1000×512"):
        bs.transfer_weights(_meta(lambda: tv.resnet18(num_classes=10)), bs.build("resnet18", device="meta"))


def test_partial_transfer_says_so() -> None:
    src = tv.resnet18()
    dst = bs.build("resnet34")
    report = bs.transfer_weights(src, dst, strict=False)
    assert not report.complete and len(report.unmatched_dst) == 96
    assert "NOT copied" in str(report)
    torch.testing.assert_close(dst.get_submodule("layer1.0.conv1").weight, src.layer1[0].conv1.weight)


def test_transfer_from_a_state_dict_file(tmp_path) -> None:
    ref = randomize(tv.resnet18())
    torch.save(ref.state_dict(), tmp_path / "w.pt")
    model = bs.build("resnet18")
    report = bs.transfer_weights(torch.load(tmp_path / "w.pt", weights_only=True), model)
    assert report.complete and len(report.by_name) == len(ref.state_dict())


@pytest.mark.parametrize("name", zoo_names())
def test_check_works_by_name_from_any_directory(name: str, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check", name]) == 0
    assert f"{bs.profile(name).params:,}" in capsys.readouterr().out


def test_cbam_overhead_is_reported_by_check(capsys) -> None:
    import json

    assert main(["check", "cbam_resnet50", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["params_before"] == 25_557_032 and report["params_after"] == 28_089_624
    assert len(report["edits"]) == 16 and {e["kind"] for e in report["edits"]} == {"cbam"}
    assert main(["check", "cbam_resnet50"]) == 0
    assert "(+2,532,592, +9.91%)" in capsys.readouterr().out


def test_baseline_field_reports_the_difference(write_spec, capsys) -> None:
    import json

    text = "name: wide\nbaseline: resnet18\ninput: [3, 224, 224]\n" + \
        open("specs/resnet18.yaml").read().split("input: [3, 224, 224]\n", 1)[1].replace("512, stride: 2", "640, stride: 2")
    path = write_spec(text)
    assert main(["check", str(path), "--json"]) == 0
    delta = json.loads(capsys.readouterr().out)["vs_baseline"]
    assert delta["baseline"] == "resnet18" and delta["params"] == bs.plan(path).params - 11_689_512 > 0
