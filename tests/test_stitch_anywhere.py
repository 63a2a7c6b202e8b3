"""Issue 25: any block, anywhere — paper code as users copy it, stitched with plain-PyTorch truth."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.blocks.library.attention_group import (EfficientMultiScaleAttention, ShuffleAttention,
                                                       SpatialGroupEnhance)
from blockstitch.meta import fingerprint


# ---- paper code as it is found: constructors that make CPU tensors or call .to(device) --------------------------
class ScaleFT(nn.Module):
    """`torch.FloatTensor([m])` and an uninitialised `torch.Tensor(n)` in the constructor."""

    def __init__(self, channels: int, m: float = 2.0) -> None:
        super().__init__()
        self.m = torch.FloatTensor([m])
        self.w = nn.Parameter(torch.Tensor(channels))
        nn.init.ones_(self.w)
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.m * self.conv(x) * self.w.view(1, -1, 1, 1)


class ToDevice(nn.Module):
    """`.to(device)` in the constructor."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        device = torch.device("cpu")
        self.conv = nn.Conv2d(channels, channels, 3, padding=1).to(device)
        self.register_buffer("k", torch.full((1,), 0.5).to(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.k


class NeedsCuda(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = torch.ones(channels, device="cuda")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover — never built without CUDA
        return x * self.scale.view(1, -1, 1, 1)


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stem(x).relu())


@pytest.mark.parametrize("cls", [ScaleFT, ToDevice])
def test_constructors_that_cannot_run_on_meta_are_built_on_the_cpu(cls: type[nn.Module]) -> None:
    torch.manual_seed(0)
    model = Toy()
    before = fingerprint(model)
    new, report = bs.stitch(model, input_shape=(3, 9, 7), insert=[{"after": "stem", "block": cls}])
    assert fingerprint(model) == before
    block = new.get_submodule(report.edits[0].module)
    assert isinstance(block, cls) and report.edits[0].out_shape == (1, 8, 9, 7)
    x = torch.randn(2, 3, 9, 7)
    with torch.no_grad():  # truth: the same modules called by hand
        assert torch.allclose(new(x), model.head(block(model.stem(x)).relu()))
        gated, _ = bs.stitch(model, input_shape=(3, 9, 7),
                             insert=[{"after": "stem", "block": cls, "identity_init": True}])
        assert torch.equal(gated(x), model(x))


def test_a_module_that_insists_on_cuda_gets_its_own_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the module builds")
    with pytest.raises(bs.BlockstitchError, match=r"NeedsCuda's constructor raised .*(CUDA|cuda|NVIDIA)") as info:
        bs.stitch(Toy(), input_shape=(3, 8, 8), insert=[{"after": "stem", "block": NeedsCuda}])
    assert "channels=" not in str(info.value)  # the arguments are not the cause


# ---- any container -----------------------------------------------------------------------------------------------
class Gain(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class Listed(nn.Module):
    """Layers held in a ModuleList, run in a loop."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class Keyed(nn.Module):
    """Layers held in a ModuleDict, run in a loop over its values."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict({"stem": nn.Conv2d(3, 8, 3, padding=1), "act": nn.ReLU(),
                                     "out": nn.Conv2d(8, 8, 1)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks.values():
            x = block(x)
        return x


class Looping(nn.Module):
    """A forward that iterates its own children."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.out = nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for child in self.children():
            x = child(x)
        return x


def _root_sequential() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Sequential(nn.Conv2d(8, 8, 1), nn.ReLU()))


@pytest.mark.parametrize(("make", "after", "by_hand"), [
    (_root_sequential, "0", lambda m, b, x: m[2](m[1](b(m[0](x))))),
    (_root_sequential, "2", lambda m, b, x: b(m[2](m[1](m[0](x))))),
    (Listed, "layers.0", lambda m, b, x: m.layers[2](m.layers[1](b(m.layers[0](x))))),
    (Keyed, "blocks.act", lambda m, b, x: m.blocks["out"](b(m.blocks["act"](m.blocks["stem"](x))))),
    (Looping, "stem", lambda m, b, x: m.out(m.act(b(m.stem(x))))),
])
def test_any_container_takes_a_stitched_block(make, after: str, by_hand) -> None:
    torch.manual_seed(0)
    model = make()
    before, keys = fingerprint(model), dict(model.state_dict())
    new, report = bs.stitch(model, input_shape=(3, 7, 9), insert=[{"after": after, "block": Gain}])
    assert fingerprint(model) == before  # the original is untouched
    state = new.state_dict()
    assert all(torch.equal(state[k], v) for k, v in keys.items())  # every untouched key and value kept
    assert set(state) - set(keys) == {f"{report.edits[0].module}.conv.{p}" for p in ("weight", "bias")}
    block = new.get_submodule(report.edits[0].module)
    x = torch.randn(2, 3, 7, 9)
    with torch.no_grad():
        assert torch.allclose(new(x), by_hand(model, block, x))


# ---- bind from the target what it shows ------------------------------------------------------------------------
def _resnet18() -> nn.Module:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    return resnet18().eval()


def test_a_token_block_after_a_cnn_stage_runs_through_a_bridge() -> None:
    model = _resnet18()
    new, report = bs.stitch(model, input_shape=(3, 57, 71), insert=[{"after": "layer2", "block": {"kind": "mhsa"}}])
    assert report.edits[0].in_shape == report.edits[0].out_shape == (1, 128, 8, 9)
    assert "bridged b c h w <-> b n c" in str(report)
    attn = new.get_submodule(report.edits[0].module).block  # the mhsa module itself, on tokens
    x = torch.randn(2, 3, 57, 71)
    with torch.no_grad():  # truth: the einops rearrange written out by hand around the same module
        from einops import rearrange

        feat = model.layer2(model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x))))))
        y = rearrange(attn(rearrange(feat, "b c h w -> b (h w) c")), "b (h w) c -> b c h w", h=8, w=9)
        truth = model.fc(torch.flatten(model.avgpool(model.layer4(model.layer3(y))), 1))
        assert torch.allclose(new(x), truth, atol=1e-5)


def test_swin_without_heads_takes_the_papers_default_and_says_so() -> None:
    new, report = bs.stitch(_resnet18(), input_shape=(3, 64, 64),
                            insert=[{"after": "layer2", "block": {"kind": "swin_block"}}])
    block = new.get_submodule(report.edits[0].module).block
    assert block.attn.heads == 128 // 32 and "heads = 4 (Swin: dim / 32)" in str(report)
    assert report.to_dict()["edits"][0]["notes"] == list(report.edits[0].notes)


class TokenMixer(nn.Module):
    """gMLP-style: weights across the tokens, sized by a constructor argument."""

    def __init__(self, dim: int, seq_len: int, in_size: tuple[int, int] = (14, 14)) -> None:
        super().__init__()
        self.mix = nn.Linear(seq_len, seq_len)
        self.pos = nn.Parameter(torch.randn(1, dim, *in_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x + self.pos + self.mix(x.flatten(2)).view(b, c, h, w)


def test_size_bound_constructor_arguments_come_from_the_map() -> None:
    model = _resnet18()
    new, report = bs.stitch(model, input_shape=(3, 57, 71), insert=[{"after": "layer2", "block": TokenMixer}])
    block = new.get_submodule(report.edits[0].module)
    assert block.mix.in_features == 8 * 9 and tuple(block.pos.shape) == (1, 128, 8, 9)
    x = torch.randn(1, 3, 57, 71)
    with torch.no_grad():
        feat = model.layer2(model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x))))))
        truth = model.fc(torch.flatten(model.avgpool(model.layer4(model.layer3(block(feat)))), 1))
        assert torch.allclose(new(x), truth, atol=1e-5)


def test_a_size_bound_library_block_is_built_for_the_map_where_it_goes() -> None:
    new, report = bs.stitch(_resnet18(), input_shape=(3, 57, 71), insert=[{"after": "layer2", "block": {"kind": "gmlp"}}])
    assert "size = 8×9" in str(report)


def _shape_keeping_kinds(shape: tuple[int, ...]) -> tuple[list[str], dict[str, str]]:
    """Every library kind that binds at ``shape`` keeping it (shapes only), and why each other one does not."""
    from blockstitch.registry import block_kinds
    from blockstitch.stitch.binding import bind_block, block_spec

    keep, refused = [], {}
    for kind in block_kinds():
        try:
            spec, out = bind_block(block_spec({"kind": kind}, (), shape), shape, "here", ())
        except bs.BlockstitchError as err:
            refused[kind] = str(err)
            continue
        (keep.append(kind) if out == shape else refused.__setitem__(kind, f"gives {out}"))
    return keep, refused


@pytest.mark.parametrize("size", [(64, 64), (57, 71)])
def test_every_shape_keeping_library_block_stitches_into_resnet18_as_the_identity(size: tuple[int, int]) -> None:
    model = _resnet18()
    at = bs.stitch(model, input_shape=(3, *size), insert=[])[1]  # nothing stitched: the shape after layer2
    shape = (1, 128, -(-size[0] // 8), -(-size[1] // 8))
    keep, refused = _shape_keeping_kinds(shape)
    assert len(keep) >= 90, refused  # the library is mostly shape-keeping; the rest say why not
    assert all(("gives" in why or "inputs" in why or "tile" in why or "multiple" in why) for why in refused.values()), refused
    # all of them at once, chained after layer2, each starting as the identity: the network is unchanged
    new, report = bs.stitch(model, input_shape=(3, *size),
                            insert=[{"after": "layer2", "block": {"kind": k}, "identity_init": True} for k in keep])
    assert [e.kind for e in report.edits] == keep and at.params_before == report.params_before
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        assert torch.equal(new(x), model(x))


def test_every_shape_keeping_library_block_stitches_into_yolov8n_as_the_identity() -> None:
    pytest.importorskip("ultralytics")
    from foreign_models import MODELS

    model, _ = MODELS["yolov8n"]()
    keep, refused = _shape_keeping_kinds((1, 64, 8, 8))  # model.4 of YOLOv8n at 64²: 64 channels, 8×8
    assert "shuffle_attn" in keep and not any("needs the channels" in why for why in refused.values()), refused
    new, report = bs.stitch(model, input_shape=(3, 64, 64),
                            insert=[{"after": "model.4", "block": {"kind": k}, "identity_init": True} for k in keep])
    assert report.edits[0].in_shape == (1, 64, 8, 8) and len(report.edits) == len(keep)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = new(x), model(x)
    a, b = (a[0], b[0]) if isinstance(a, (tuple, list)) else (a, b)
    assert torch.equal(a, b)


def test_a_window_block_at_a_non_multiple_size_pads_as_its_paper_does() -> None:
    import torch.nn.functional as F

    model = _resnet18()
    new, report = bs.stitch(model, input_shape=(3, 57, 71), insert=[{"after": "layer2", "block": {"kind": "biformer"}}])
    assert "auto_pad = true" in str(report) and report.edits[0].out_shape == (1, 128, 8, 9)
    block = new.get_submodule(report.edits[0].module)
    feat = torch.randn(2, 128, 8, 9)
    with torch.no_grad():  # truth: zeros to 14×14 by hand, the same weights without padding, then the crop
        block.auto_pad = False
        truth = block(F.pad(feat, (0, 5, 0, 6)))[:, :, :8, :9]
        block.auto_pad = True
        assert torch.allclose(block(feat), truth, atol=1e-6)
    with pytest.raises(bs.BlockstitchError, match="does not tile"):  # said, not padded, when asked so
        bs.stitch(model, input_shape=(3, 57, 71),
                  insert=[{"after": "layer2", "block": {"kind": "biformer", "auto_pad": False}}])


@pytest.mark.parametrize(("kind", "channels", "plain"), [
    ("shuffle_attn", 64, lambda: ShuffleAttention(64, 32)),  # SA-Net's G = 64 needs 128 channels
    ("sge", 32, lambda: SpatialGroupEnhance(32)),
    ("ema", 16, lambda: EfficientMultiScaleAttention(16, 16)),
])
def test_a_default_group_count_the_channels_cannot_take_is_lowered_and_said(kind: str, channels: int, plain) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU())
    new, report = bs.stitch(model, input_shape=(3, 8, 9), insert=[{"after": "0", "block": {"kind": kind}}])
    block, truth = new.get_submodule(report.edits[0].module), plain()
    assert any(n.startswith(f"groups = {block.groups} ") for n in report.edits[0].notes), report.edits[0].notes
    truth.load_state_dict(block.state_dict())  # strict: the same tensors, the same shapes
    x = torch.randn(2, 3, 8, 9)
    with torch.no_grad():  # truth: the plain module with the lowered group count, called by hand
        assert torch.allclose(new(x), model[1](truth(model[0](x))), atol=1e-6)
    with pytest.raises(bs.BlockstitchError, match="needs the channels to be a multiple"):  # written: never changed
        bs.stitch(model, input_shape=(3, 8, 9), insert=[{"after": "0", "block": {"kind": kind, "groups": 64}}])


FORWARD_ON_CPU = '''
import torch
from torch import nn


class ScaleInForward(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        scale = torch.ones(x.shape[1]).view(1, -1, 1, 1)  # a CPU tensor made in the forward: no meta run
        return self.conv(x) * scale
'''


def test_an_edit_spec_whose_block_forward_cannot_run_on_meta_is_checked_for_real(tmp_path, capsys) -> None:
    import json

    from blockstitch.cli import main

    (tmp_path / "paper.py").write_text(FORWARD_ON_CPU)
    edit = tmp_path / "edit.yaml"
    edit.write_text("name: r18\nextends: resnet18\ninput: [3, 33, 35]\ninsert:\n"
                    "  - {after: layer1, block: {kind: ScaleInForward}}\n")
    assert main(["--plugin", str(tmp_path / "paper.py"), "check", str(edit), "--json"]) == 0  # was: refused
    data = json.loads(capsys.readouterr().out)
    model = _resnet18()  # truth: torchvision's ResNet-18 run by hand, and the 1×1 conv's parameters counted
    with torch.no_grad():
        feat = model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(torch.zeros(1, 3, 33, 35))))))
    assert data["edits"][0]["in_shape"] == data["edits"][0]["out_shape"] == list(feat.shape)
    conv = sum(p.numel() for p in nn.Conv2d(64, 64, 1).parameters())
    assert data["params_before"] == sum(p.numel() for p in model.parameters())
    assert data["params_after"] == data["params_before"] + conv


# Shape-keeping kinds that may still refuse a place, and why (each refusal is the paper's own code's):
PLACE_REFUSALS = {
    "halo_attn": "does not tile",  # timm's HaloAttn (and the paper's code) assert h, w multiples of block_size
    "patch_embed": "patch_size",  # a stride-p embedding: keeps the shape only where p = 1
    "pos_embed": "does not map back",  # adds a class token
}


def _stage_shapes(model: nn.Module, names: list[str], size: tuple[int, int]) -> list[tuple[int, ...]]:
    """Truth: the output shape of each named module, from one real forward with hooks."""
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [model.get_submodule(n).register_forward_hook(
        lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape))) for n in names]
    with torch.no_grad():
        model(torch.zeros(1, 3, *size))
    for h in hooks:
        h.remove()
    return [shapes[n] for n in names]


def test_every_shape_keeping_library_block_binds_after_every_stage() -> None:
    """Item 2: after any stage of ResNet-18 (even and odd inputs) and of YOLOv8n's backbone, every library block
    that keeps its input's shape binds there; the only refusals are the paper code's own, named above."""
    places = [s for size in [(64, 64), (57, 71)]
              for s in _stage_shapes(_resnet18(), ["layer1", "layer2", "layer3", "layer4"], size)]
    if importlib.util.find_spec("ultralytics") is not None:
        from foreign_models import MODELS

        places += _stage_shapes(MODELS["yolov8n"]()[0], [f"model.{i}" for i in range(10)], (64, 96))
    assert len(set(places)) >= 8
    for shape in sorted(set(places)):
        _, refused = _shape_keeping_kinds(shape)
        wrong = {k: why for k, why in refused.items() if "gives" not in why and "takes 2 inputs" not in why
                 and PLACE_REFUSALS.get(k, "\0") not in why}
        assert not wrong, (shape, wrong)


def test_a_block_stitched_into_an_eval_network_runs_in_eval() -> None:
    """A stitched block takes the mode of what holds it: in an eval network its BatchNorms use running statistics
    (truth: a sample's output does not depend on its batch, and no running statistic moves); in a training one, it
    trains. scconv after ResNet-18's layer4 at 64² pools to 1×1, where a training BN refuses batch 1."""
    model = _resnet18()
    new, report = bs.stitch(model, input_shape=(3, 64, 64), insert=[{"after": "layer4", "block": {"kind": "scconv_2020"}}])
    block = new.get_submodule(report.edits[0].module)
    assert not any(m.training for m in new.modules())
    before = {k: v.clone() for k, v in block.state_dict().items()}
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(new(x)[1:2], new(x[1:2]), atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in block.state_dict().items())
    trained, _ = bs.stitch(_resnet18().train(), input_shape=(3, 64, 64),
                           insert=[{"after": "layer4", "block": {"kind": "scconv_2020"}}])
    assert all(m.training for m in trained.modules())


@pytest.mark.parametrize(("net", "stage", "size"), [
    ("resnet18", "layer1", (57, 71)), ("resnet18", "layer3", (57, 71)), ("resnet18", "layer4", (64, 64)),
    ("yolov8n", "model.2", (64, 96)), ("yolov8n", "model.9", (64, 96)),
])
def test_every_shape_keeping_library_block_is_the_identity_after_other_stages(net: str, stage: str,
                                                                              size: tuple[int, int]) -> None:
    """Item 2 beyond layer2 and model.4: the narrow stages (16–32 channels), the 2×2 and 2×3 maps, an odd input;
    all of them chained after the stage, each starting as the identity: outputs equal the network's own."""
    if net == "yolov8n":
        pytest.importorskip("ultralytics")
        from foreign_models import MODELS

        model = MODELS["yolov8n"]()[0]
    else:
        model = _resnet18()
    keep, _ = _shape_keeping_kinds(_stage_shapes(model, [stage], size)[0])
    new, report = bs.stitch(model, input_shape=(3, *size),
                            insert=[{"after": stage, "block": {"kind": k}, "identity_init": True} for k in keep])
    assert len(report.edits) == len(keep) >= 95
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        a, b = new(x), model(x)
    a, b = (a[0], b[0]) if isinstance(a, (tuple, list)) else (a, b)
    assert torch.equal(a, b)


def test_epsanets_conv_groups_are_halved_together_to_fit_narrow_channels() -> None:
    from blockstitch.blocks.library.attention_select import PyramidSplitAttention

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU())
    new, report = bs.stitch(model, input_shape=(3, 8, 9), insert=[{"after": "0", "block": {"kind": "psa_pyramid"}}])
    assert report.edits[0].notes[0].startswith("conv_groups = (1, 2, 4, 8) ")
    block = new.get_submodule(report.edits[0].module)
    truth = PyramidSplitAttention(32, (3, 5, 7, 9), (1, 2, 4, 8), 1)  # 32/4 = 8 channels a split, SE 8 → max(1, 8/16)
    truth.load_state_dict(block.state_dict())
    assert [c.groups for c in truth.convs] == [1, 2, 4, 8]
    x = torch.randn(2, 3, 8, 9)
    with torch.no_grad():
        assert torch.allclose(new(x), model[1](truth(model[0](x))), atol=1e-6)
