"""Spec → plan → module: shapes, wiring, bridges, multipliers, and the reference networks' parameters."""

from __future__ import annotations

import resource

import pytest
import torch

import blockstitch as bs

TINY = """
name: tiny
input: [3, 32, 32]
defaults: {norm: batchnorm, act: relu}
nodes:
  - {id: stem, kind: conv, out_channels: 16, stride: 2}
  - {id: stage, kind: basic, out_channels: 32, stride: 2, repeat: 3}
  - {id: attn, kind: mhsa, heads: 4}
  - {id: mix, kind: conv, out_channels: 32, kernel_size: 1}
  - {id: join, kind: add, from: [stage, mix]}
  - {id: head, kind: classifier, num_classes: 10}
"""


def test_resnet50_matches_torchvision_by_name() -> None:
    torchvision = pytest.importorskip("torchvision")
    plan = bs.plan("resnet50")
    assert plan.params == 25_557_032
    assert abs(plan.macs / 1e9 - 4.089) < 0.005
    assert plan.step("layer2.0").in_shapes == ((1, 256, 56, 56),)
    assert plan.step("layer2.0").out.shape == (1, 512, 28, 28)
    model = bs.build(plan).eval()
    ref = torchvision.models.resnet50().eval()
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-5, atol=1e-5)


def test_large_check_runs_on_meta_without_memory() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    plan = bs.plan("resnet50", (3, 1024, 1024), batch=64)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert plan.output_shapes() == [(64, 1000)]
    assert plan.step("layer1.0").out.shape == (64, 256, 256, 256)  # 4 GiB in float32 were it real
    assert all(p.is_meta for s in plan.steps for p in s.meta_module.parameters())
    assert grown_mib < 300, f"planning grew the process by {grown_mib:.0f} MiB"


@pytest.mark.parametrize("name, params", [("resnet50", 25_557_032), ("unet", 31_037_698), ("vit_b_16", 86_567_656)])
def test_reference_parameter_counts(name: str, params: int) -> None:
    assert bs.plan(name).params == params


def test_vit_macs_count_attention() -> None:
    assert abs(bs.plan("vit_b_16").macs / 1e9 - 17.56) / 17.56 < 0.005


def test_unet_odd_sizes_follow_the_pad_policy() -> None:
    plan = bs.plan("unet", (3, 37, 50))
    assert plan.output_shapes() == [(1, 2, 37, 50)]
    model = bs.build("unet", (3, 37, 50)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 37, 50)).shape == (1, 2, 37, 50)


def test_bridges_are_inserted_named_and_listed(write_spec) -> None:
    plan = bs.plan(write_spec(TINY))
    bridges = {s.name: s.spec.pattern for s in plan.bridges}
    assert bridges == {"attn_bridge": "b c h w -> b (h w) c", "mix_bridge": "b (h w) c -> b c h w"}
    assert plan.step("attn").out.grid == (8, 8)
    model = bs.build(plan)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert "attn_bridge" in dict(model.named_modules())


def test_repeat_strides_first_only_and_alias_names_the_last(write_spec) -> None:
    plan = bs.plan(write_spec(TINY))
    strides = [plan.step(f"stage.{i}").spec.stride for i in range(3)]
    assert strides == [2, 1, 1]
    assert plan.step("join").inputs == ("stage.2", "mix")


def test_defaults_fill_only_unset_fields(write_spec) -> None:
    text = "name: n\ninput: [3, 8, 8]\ndefaults: {act: silu, norm: groupnorm}\nnodes:\n" \
           "  - {id: a, kind: conv, out_channels: 32}\n  - {id: b, kind: conv, out_channels: 32, act: gelu}\n"
    plan = bs.plan(write_spec(text))
    assert plan.step("a").spec.act == "silu" and plan.step("b").spec.act == "gelu"
    assert plan.step("a").spec.norm == "groupnorm"


def test_width_and_depth_multipliers(write_spec) -> None:
    base = TINY.replace("name: tiny", "name: tiny\nwidth: 0.5\ndepth: 0.34")
    plan = bs.plan(write_spec(base))
    assert plan.step("stem").out.shape[1] == 8
    assert plan.step("stage.0").out.shape[1] == 16
    assert [s.name for s in plan.steps if s.name.startswith("stage.")] == ["stage.0"]
    assert plan.step("head").out.shape == (1, 10)  # class counts are not scaled


def test_multiple_outputs_return_a_tuple(write_spec) -> None:
    text = TINY + "outputs: [stem, head]\n"
    model = bs.build(write_spec(text))
    stem, head = model(torch.randn(1, 3, 32, 32))
    assert stem.shape == (1, 16, 16, 16) and head.shape == (1, 10)


def test_build_on_meta_allocates_nothing() -> None:
    model = bs.build("vit_b_16", device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 86_567_656


def test_built_module_is_plain_torch_and_exports(write_spec) -> None:
    model = bs.build(write_spec(TINY)).eval()
    assert "stage.0" in model.code.replace("getattr(self.stage, \"0\")", "stage.0")
    x = torch.randn(2, 3, 32, 32)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


def test_built_module_compiles(write_spec) -> None:
    model = bs.build(write_spec(TINY)).eval()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))


def test_dict_sources_and_input_override() -> None:
    spec = {"name": "d", "input": [3, 16, 16], "nodes": [{"kind": "conv", "out_channels": 4},
                                                        {"kind": "global_pool"}]}
    plan = bs.plan(spec, (3, 9, 7), batch=3)
    assert plan.output_shapes() == [(3, 4)]
    assert [s.name for s in plan.steps] == ["conv_0", "global_pool_1"]


def test_json_spec_files_load(tmp_path) -> None:
    path = tmp_path / "n.json"
    path.write_text('{"name": "j", "input": [3, 8, 8],\n "nodes": [{"kind": "conv", "out_channels": 4}]}')
    assert bs.plan(path).output_shapes() == [(1, 4, 8, 8)]
