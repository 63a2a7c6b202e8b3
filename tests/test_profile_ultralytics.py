"""Ultralytics' own `model.info()` figure beside ours (issue 26, item 3): the stated figures are what Ultralytics'
function returns for the same model (asked here, separately), and the explanation's numbers hold (BatchNorm:
its output elements as thop counts them, and the parameters fusing folds away)."""

from __future__ import annotations

import io
import json

import pytest
import torch
from rich.console import Console
from torch import nn

pytest.importorskip("ultralytics")

import blockstitch as bs
from blockstitch.cli import main
from blockstitch.profile.ultralytics_info import ultralytics_info
from blockstitch.render import render_profile
from blockstitch.subject import subject

NAME, SIZE = "yolov8n.yaml", (320, 256)  # not square: the image size must reach Ultralytics as (h, w)


@pytest.fixture(scope="module")
def theirs() -> dict[str, float]:
    """Ultralytics' figures, asked here on a model built by Ultralytics itself, and BatchNorm's own numbers."""
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import model_info

    model = DetectionModel(NAME, verbose=False).eval()
    elements = []
    hooks = [m.register_forward_hook(lambda m, i, o: elements.append(o.numel()))
             for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, *SIZE))
    for h in hooks:
        h.remove()
    channels = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    _, params, _, gflops = model_info(model, verbose=True, imgsz=list(SIZE))
    model.fuse(verbose=False)
    _, fused_params, _, fused_gflops = model_info(model, verbose=True, imgsz=list(SIZE))
    return {"params": params, "gflops": gflops, "fused_params": fused_params, "fused_gflops": fused_gflops,
            "bn_elements": sum(elements), "bn_channels": channels}


@pytest.fixture(scope="module")
def ours() -> bs.Profile:
    return bs.profile(f"ultralytics:{NAME}", input_shape=(3, *SIZE))


def test_the_stated_ultralytics_figures_are_what_its_function_returns(ours: bs.Profile, theirs: dict) -> None:
    info = ours.ultralytics
    assert info is not None and info.imgsz == SIZE
    assert (info.params, info.fused_params) == (theirs["params"], theirs["fused_params"])
    assert (info.gflops, info.fused_gflops) == (theirs["gflops"], theirs["fused_gflops"]) and info.gflops > 0
    line = (f"Ultralytics model.info() at 320×256: {theirs['params']:,} params, {theirs['gflops']:.3f} GFLOPs (as "
            f"built); fused: {theirs['fused_params']:,} params, {theirs['fused_gflops']:.3f} GFLOPs")
    assert str(info).splitlines()[0] == line


def test_the_explanation_s_numbers_hold(ours: bs.Profile, theirs: dict) -> None:
    info = ours.ultralytics
    assert info is not None
    # thop counts each BatchNorm output element as 4 operations (subtract, divide, scale, shift), ×2 for FLOPs
    extra = theirs["gflops"] - ours.flops / 1e9
    assert extra * 1e9 == pytest.approx(8 * theirs["bn_elements"], rel=1e-9)
    # fusing: each BatchNorm's γ and β (2 per channel) become the conv's bias (1 per channel)
    assert theirs["params"] - theirs["fused_params"] == theirs["bn_channels"] == ours.params - info.ours_fused_params
    assert ours.params == theirs["params"] and "native_batch_norm" in ours.uncounted
    assert info.ours_fused_flops == ours.flops and info.ours_fused_flops / 1e9 == pytest.approx(
        theirs["fused_gflops"], rel=1e-9)  # ours does not count BatchNorm, fused or not
    why = "\n".join(info.why)
    assert f"{extra:+.3f} GFLOPs here" in why and "the parameters are the same" in why
    assert f"({-theirs['bn_channels']:+,} params)" in why and "so BatchNorm is the whole difference" in why


def test_text_and_json_carry_it(ours: bs.Profile, theirs: dict, capsys) -> None:
    buf = io.StringIO()
    render_profile(ours, Console(file=buf, width=300))
    assert str(ours.ultralytics) in buf.getvalue()
    assert str(ours.ultralytics).splitlines()[0] in ours.to_markdown()
    assert main(["profile", f"ultralytics:{NAME}", "--input", f"3,{SIZE[0]},{SIZE[1]}", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["ultralytics_info"]
    assert got["function"] == "ultralytics.utils.torch_utils.model_info" and got["imgsz"] == list(SIZE)
    assert [got[k] for k in ("params", "gflops", "fused_params", "fused_gflops")] == [
        theirs[k] for k in ("params", "gflops", "fused_params", "fused_gflops")]


def test_without_thop_it_says_so(ours: bs.Profile, monkeypatch) -> None:
    import ultralytics.utils.torch_utils as tu

    monkeypatch.setattr(tu, "get_flops", lambda *a, **k: 0.0)  # what Ultralytics returns without thop
    info = ultralytics_info(subject(f"ultralytics:{NAME}"), ours, lambda m: bs.profile(m, input_shape=(3, *SIZE)))
    assert info.gflops == 0.0 and "get_flops returned 0.0" in info.why[0] and len(info.why) == 1


def test_a_network_of_ours_has_no_ultralytics_figure() -> None:
    assert bs.profile("resnet18", input_shape=(3, 32, 32)).ultralytics is None
