"""Models and modules nobody here wrote, as first-class targets: Ultralytics YOLO, torchvision segmentation and
detection models (dict and list-of-dict outputs), timm models, and plain `nn.Module` classes from a paper."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from foreign_models import MODELS
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import blockstitch as bs
from blockstitch.cli import main
from blockstitch.meta import fingerprint


class PaperAttention(nn.Module):
    """As a paper's repository writes it: its own constructor names, an input channel `c1`, an output `c2`."""

    def __init__(self, c1: int, c2: int, k: int = 3) -> None:
        super().__init__()
        self.cv = nn.Conv2d(c1, c2, k, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.cv(x).sigmoid()


class NeedsMore(nn.Module):
    def __init__(self, width: int, depth: int) -> None:
        super().__init__()


# ---- Ultralytics -----------------------------------------------------------------------------------------------
def test_yolov8n_profiles_to_flop_counter_macs_at_640() -> None:
    model, _ = MODELS["yolov8n"]()  # already ran at 64×64: anchors and strides are cached
    before = fingerprint(model)
    prof = bs.profile(model, (3, 640, 640))
    assert fingerprint(model) == before  # the 640 shape run did not touch the 64×64 cache
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 640, 640))
    assert prof.macs == counter.get_total_flops() // 2
    assert abs(prof.macs / 1e9 - 4.37) < 0.01  # Ultralytics reports it as 8.7 GFLOPs
    assert prof.method == "meta"


def _yolo_stitched(identity: bool = True):  # type: ignore[no-untyped-def]
    model, shape = MODELS["yolov8n"]()
    new, report = bs.stitch(model, insert=[{"after": "model.[2468]", "block": {"kind": "cbam"},
                                            "identity_init": identity}], input_shape=shape)
    return model, new, report


def test_stitched_yolo_keeps_layer_attributes_and_reproduces_outputs() -> None:
    model, new, report = _yolo_stitched()
    assert [e.path for e in report.edits] == ["model.2", "model.4", "model.6", "model.8"]
    for old_layer, new_layer in zip(model.model, new.model):
        assert (new_layer.f, new_layer.i, new_layer.type, new_layer.np) == \
            (old_layer.f, old_layer.i, old_layer.type, old_layer.np)
    assert new.save == model.save
    x = torch.randn(1, 3, 64, 64)
    new.eval()
    with torch.no_grad():
        assert torch.equal(new(x)[0], model(x)[0])
    buffer = io.BytesIO()
    torch.save(new, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        assert torch.equal(again(x)[0], new(x)[0])
    assert sum(p.numel() for p in again.parameters()) == report.params_after


def test_replacing_a_yolo_layer_carries_what_its_forward_reads() -> None:
    model, shape = MODELS["yolov8n"]()
    new, _ = bs.stitch(model, replace=[{"path": "model.9", "block": {"kind": "identity"}}], input_shape=shape)
    layer = new.model[9]
    assert (layer.f, layer.i) == (model.model[9].f, model.model[9].i) and layer.np == 0
    with torch.no_grad():
        assert new.eval()(torch.randn(1, 3, 64, 64))[0].shape == (1, 84, 84)


def test_stitched_yolo_trains() -> None:
    from ultralytics.cfg import get_cfg

    _, new, _ = _yolo_stitched(identity=False)
    new.args = get_cfg()  # the loss hyper-parameters Ultralytics' trainer would attach
    torch.manual_seed(0)
    boxes = [[0.5, 0.5, 0.4, 0.4], [0.3, 0.6, 0.2, 0.3], [0.7, 0.3, 0.3, 0.3], [0.4, 0.4, 0.5, 0.5]]
    batch = {"img": torch.rand(2, 3, 96, 96), "batch_idx": torch.tensor([0.0, 0.0, 1.0, 1.0]),
             "cls": torch.tensor([[0.0], [1.0], [2.0], [0.0]]), "bboxes": torch.tensor(boxes)}
    new.train()
    opt = torch.optim.SGD(new.parameters(), lr=0.002, momentum=0.9)
    losses = []
    for _ in range(10):
        loss, _ = new.loss(batch)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
        losses.append(float(loss.sum().detach()))
    assert losses[-1] < 0.9 * losses[0], losses
    cbam = new.get_submodule("model_2_cbam")
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in cbam.parameters())


# ---- torchvision ------------------------------------------------------------------------------------------------
def test_segmentation_model_with_dict_output() -> None:
    model, shape = MODELS["lraspp"]()
    prof = bs.profile(model, shape)
    assert prof.macs > 0 and prof.method == "meta"
    new, _ = bs.stitch(model, insert=[{"after": "backbone.4", "block": {"kind": "cbam"}, "identity_init": True}],
                       input_shape=shape)
    x = torch.randn(1, *shape)
    with torch.no_grad():
        assert torch.equal(new.eval()(x)["out"], model(x)["out"])


def test_detection_model_eval_and_train() -> None:
    model, shape = MODELS["fasterrcnn"]()
    prof = bs.profile(model, shape)
    assert prof.macs > 0 and prof.method.startswith("real run")  # NMS cannot run on meta tensors
    new, report = bs.stitch(model, insert=[{"after": "backbone.body.3", "block": {"kind": "se"},
                                            "identity_init": True}], input_shape=shape)
    assert len(report.edits) == 1
    images = [torch.rand(*shape)]
    with torch.no_grad():
        ours, theirs = new.eval()(images), model(images)
    assert ours[0].keys() == theirs[0].keys()
    assert all(torch.equal(ours[0][k], theirs[0][k]) for k in ours[0])
    new.train()
    losses = new(images, [{"boxes": torch.tensor([[10.0, 10.0, 50.0, 60.0]]), "labels": torch.tensor([1])}])
    sum(losses.values()).backward()
    assert new.get_submodule(report.edits[0].module).gate.grad is not None


def test_timm_model_profile_and_stitch() -> None:
    model, shape = MODELS["timm_hook"]()
    new, report = bs.stitch(model, insert=[{"after": "layer*", "block": {"kind": "eca"}}], input_shape=shape)
    assert len(report.edits) == 4 and report.params_after - report.params_before == sum(e.params for e in report.edits) > 0
    seen = len(model.features_seen)
    with torch.no_grad():
        new(torch.randn(1, *shape))
    assert len(new.features_seen) == seen + 1 and len(model.features_seen) == seen  # its hook, its own list
    assert bs.profile(new, shape).macs > bs.profile(model, shape).macs


# ---- any nn.Module class is a block -----------------------------------------------------------------------------
def test_module_class_stitched_from_python_with_inferred_channels() -> None:
    model, shape = MODELS["timm_hook"]()
    new, report = bs.stitch(model, insert=[{"after": "layer[12]", "block": PaperAttention, "args": {"k": 5}}],
                            input_shape=shape)
    assert [e.kind for e in report.edits] == ["PaperAttention", "PaperAttention"]
    assert [e.params for e in report.edits] == [64 * 64 * 25 + 64, 128 * 128 * 25 + 128]
    assert report.macs_after > report.macs_before
    gated, _ = bs.stitch(model, insert=[{"after": "layer1", "block": PaperAttention, "identity_init": True}],
                         input_shape=shape)
    x = torch.randn(1, *shape)
    with torch.no_grad():
        assert torch.equal(gated(x), model(x))


@pytest.mark.parametrize(("block", "message"), [
    (NeedsMore, r"(?s)cannot infer 'width', 'depth'.*args: \{width: \.\.\., depth: \.\.\.\}"),
    (int, r"int is not an nn.Module class"),
    ({"kind": "se"}, r"matches no module"),
])
def test_bad_blocks_are_located_errors_and_leave_the_model_alone(block: object, message: str) -> None:
    model, shape = MODELS["timm_hook"]()
    before = fingerprint(model)
    after = "nowhere.*" if isinstance(block, dict) else "layer1"
    with pytest.raises(bs.BlockstitchError, match=message) as info:
        bs.stitch(model, insert=[{"after": after, "block": block}], input_shape=shape)
    assert "insert[0]" in str(info.value)
    assert fingerprint(model) == before


PLUGIN = '''
import torch
from torch import nn


class PaperAttention(nn.Module):
    def __init__(self, dim, reduction=4):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(dim, dim // reduction), nn.ReLU(), nn.Linear(dim // reduction, dim))

    def forward(self, x):
        return x * self.fc(x.mean((2, 3))).sigmoid()[:, :, None, None]
'''


def test_module_class_from_a_plugin_file_is_a_kind_in_specs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "paper.py").write_text(PLUGIN)
    net = tmp_path / "net.yaml"
    net.write_text("name: tiny\ninput: [3, 16, 16]\nnodes:\n  - {kind: conv, out_channels: 8}\n"
                   "  - {kind: PaperAttention, args: {reduction: 2}}\n")
    assert main(["--plugin", str(tmp_path / "paper.py"), "check", str(net)]) == 0
    assert "PaperAttention" in capsys.readouterr().out
    edit = tmp_path / "edit.yaml"
    edit.write_text("name: r18_paper\nextends: resnet18\ninsert:\n  - after: layer*\n"
                    "    block: {kind: PaperAttention}\n    identity_init: true\n")
    assert main(["--plugin", str(tmp_path / "paper.py"), "check", str(edit)]) == 0
    out = capsys.readouterr().out
    assert out.count("PaperAttention") >= 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: tiny\ninput: [3, 16, 16]\nnodes:\n  - {kind: conv, out_channels: 8}\n"
                   "  - {kind: PaperAttention, args: {reduction: 2, nope: 1}}\n")
    assert main(["--plugin", str(tmp_path / "paper.py"), "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "nope" in err and "Traceback" not in err
