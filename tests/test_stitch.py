"""Stitching into existing networks: edits in spec files and in Python, weights kept, errors located."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import timm
import torch
import yaml
from safetensors.torch import save_file

import blockstitch as bs
from blockstitch.cli import main


def _spec(tmp_path: Path, text: str, name: str = "edit.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_cbam_resnet50_is_resnet50_plus_one_insert() -> None:
    data = yaml.safe_load(Path("specs/cbam_resnet50.yaml").read_text())
    assert data["extends"] == "resnet50" and len(data["insert"]) == 1 and "nodes" not in data
    assert bs.profile("cbam_resnet50").params == 28_089_624


def test_seresnet50_as_an_edit_has_timm_parameters(tmp_path: Path) -> None:
    path = _spec(tmp_path, """
        name: se_edit
        extends: resnet50
        insert:
          - {after: 'layer*.*.bn3', block: {kind: se, reduction: 16}}
    """)
    model = bs.build(path, device="meta")
    with torch.device("meta"):
        reference = timm.create_model("seresnet50")
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())


def test_timm_resnet50_with_weights_file_and_identity_init(tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = timm.create_model("resnet50").eval()
    file = tmp_path / "resnet50.safetensors"
    save_file({k: v.contiguous() for k, v in base.state_dict().items()}, str(file))
    path = _spec(tmp_path, f"""
        name: cbam_after_stages
        extends: timm:resnet50
        weights: {file.name}
        insert:
          - {{after: 'layer*', block: {{kind: cbam}}, identity_init: true}}
    """)
    model = bs.build(path).eval()
    from safetensors.torch import load_file

    saved, state = load_file(str(file)), model.state_dict()
    for name, tensor in saved.items():  # untouched parameters: same names, bit-identical
        assert torch.equal(state[name], tensor), name
    new = [k for k in state if k not in saved]
    assert new and all(k.split(".")[0] in {"layer1_cbam", "layer2_cbam", "layer3_cbam", "layer4_cbam"} for k in new)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), base(x), rtol=0, atol=0)


def test_unet_with_timm_encoder_builds_checks_and_runs(capsys) -> None:
    plan = bs.plan("unet_resnet34")
    assert set(plan.step("enc").taps) == {"enc.act1", "enc.layer1", "enc.layer2", "enc.layer3", "enc.layer4"}
    assert plan.step("up1").inputs == ("enc.layer4", "enc.layer3")
    assert main(["check", "unet_resnet34"]) == 0 and "enc.layer4" in capsys.readouterr().out
    model = bs.build("unet_resnet34", (3, 64, 96)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 96)).shape == (1, 2, 64, 96)
    assert bs.profile("unet_resnet34").macs == plan.macs


def test_python_api_on_a_timm_model_replace_wrap_remove_before() -> None:
    model = timm.create_model("resnet18").eval()
    keep = {k: v.clone() for k, v in model.state_dict().items()}
    model, report = bs.stitch(
        model,
        insert=[{"before": "layer4", "block": {"kind": "eca"}}],
        replace=[{"path": "layer3.*.conv2", "block": {"kind": "conv", "out_channels": 256, "act": "none"}}],
        wrap=[{"path": "layer2.1", "wrapper": "gated", "gate_init": 0.5}],
        remove=[{"path": "layer1.1.act2"}],
    )
    ops = [(e.op, e.path) for e in report.edits]
    assert ("insert", "layer4") in ops and ("replace", "layer3.0.conv2") in ops and ("remove", "layer1.1.act2") in ops
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in keep.items() if not k.startswith("layer3."))
    assert "layer2_1_gate.gate" in state and "layer4_eca.conv.weight" in state  # layer2 is a Sequential
    n_eca = sum(1 for m in model.modules() if type(m).__name__ == "EcaModule")
    assert n_eca == 1
    x = torch.randn(1, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))
        torch.testing.assert_close(torch.compile(model, fullgraph=True, backend="aot_eager")(x), model(x))
    assert report.params_after - report.params_before == sum(e.params for e in report.edits)


def test_stitch_on_an_assembled_network_reaches_repeat_stacks() -> None:
    model, report = bs.stitch(bs.build("resnet18"), insert=[{"after": "layer*", "block": {"kind": "se"}}])
    assert [e.module for e in report.edits] == ["layer1_se", "layer2_se", "layer3_se", "layer4_se"]
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.parametrize("case, text, match, line", [
    ("glob_nothing", """
        name: e
        extends: resnet50
        insert:
          - {after: 'layr*', block: {kind: se}}
     """, r"'layr\*' matches no module of the base network.*nearest real paths: layer4, layer3", 5),
    ("cannot_bind", """
        name: e
        extends: resnet50
        insert:
          - {after: fc, block: {kind: se}}
     """, r"cannot bind 'se' at 'fc': it takes b c h w but 'fc' carries 1×1000", 5),
    ("replace_changes_shape", """
        name: e
        extends: resnet50
        replace:
          - {path: layer1.0.conv2, block: {kind: conv, out_channels: 32}}
     """, r"replacing 'layer1.0.conv2' with 'conv' changes its output from 1×64×56×56 to 1×32×56×56", 5),
    ("unknown_block", """
        name: e
        extends: resnet50
        insert:
          - {after: layer1, block: {kind: cbma}}
     """, r"unknown block kind 'cbma' — did you mean 'cbam'\?", 5),
    ("unknown_edit_field", """
        name: e
        extends: resnet50
        insert:
          - {aftr: layer1, block: {kind: se}}
     """, r"unknown field 'aftr' in insert\[0\]", 5),
])
def test_edit_errors_are_located(tmp_path: Path, capsys, case: str, text: str, match: str, line: int) -> None:
    path = _spec(tmp_path, text, f"{case}.yaml")
    with pytest.raises(bs.SpecError, match=f"(?s){match}") as info:
        bs.build(path, device="meta")
    assert info.value.file == str(path) and info.value.line == line
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{path}:{line}" in err


def test_weights_that_do_not_fit_name_what_is_wrong(tmp_path: Path, capsys) -> None:
    state = timm.create_model("resnet18").state_dict()
    state.pop("fc.bias")
    state["extra.weight"] = torch.zeros(3)
    state["conv1.weight"] = torch.zeros(8, 3, 7, 7)
    save_file(state, str(tmp_path / "w.safetensors"))
    path = _spec(tmp_path, """
        name: e
        extends: timm:resnet18
        weights: w.safetensors
        insert:
          - {after: layer1, block: {kind: se}}
    """)
    with pytest.raises(bs.SpecError, match=r"(?s)does not fit the base network.*missing: fc\.bias.*"
                                           r"unexpected: extra\.weight.*mis-shaped: conv1\.weight \(file 8×3×7×7"):
        bs.build(path)
    assert main(["check", str(path)]) == 2 and "does not fit" in capsys.readouterr().err


def test_pt_weights_load_with_weights_only(tmp_path: Path) -> None:
    base = bs.build("resnet18")
    torch.save(base.state_dict(), tmp_path / "w.pt")
    path = _spec(tmp_path, "name: e\nextends: resnet18\nweights: w.pt\ninsert:\n  - {after: layer2, block: {kind: eca}}\n")
    model = bs.build(path)
    assert torch.equal(model.get_submodule("conv1").weight, base.get_submodule("conv1").weight)


@pytest.mark.parametrize("attn", ["se", "eca", "gc", "cbam", "coord", "ela", "ese", "lcbam"])
def test_timm_attention_kinds_stitch_in(attn: str) -> None:
    model, report = bs.stitch(bs.build("resnet18", device="meta"),
                              insert=[{"after": "layer3", "block": {"kind": "timm_attn", "type": attn}}])
    assert report.edits[0].out_shape == (1, 256, 14, 14) and report.edits[0].params > 0


def test_plan_of_an_edit_spec_points_to_check() -> None:
    with pytest.raises(bs.SpecError, match="edits 'resnet50': it has no plan of its own"):
        bs.plan("cbam_resnet50")


def test_a_block_stitched_inside_a_sequential_runs_once() -> None:
    calls = []
    model = timm.create_model("resnet18").eval()
    model, _ = bs.stitch(model, insert=[{"after": "layer1.0", "block": {"kind": "se"}}])
    se = model.get_submodule("layer1_0_se")
    se.register_forward_hook(lambda *a: calls.append(1))
    model(torch.randn(1, 3, 32, 32))
    assert calls == [1]
