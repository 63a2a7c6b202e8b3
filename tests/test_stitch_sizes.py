"""The stitched network's input sizes: the rule stitch states (found on meta tensors) against the real network run
for real at sizes tried and not tried; the blamed module against the one Python's traceback says raised; an
``--input`` that breaks the rule refused (exit 2, with sizes to try) before any real forward."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.cli import main
from blockstitch.stitch import InputRule
from blockstitch.stitch.sizes import input_rule


class Window(nn.Module):
    """Views the map as k×k windows with no padding (as much paper code does): h and w must be multiples of k."""

    def __init__(self, k: int = 7) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        windows = x.view(b, c, h // self.k, self.k, w // self.k, self.k)  # b c gy k gx k
        return windows.reshape(b, c, h, w)


class Grid8(nn.Module):
    """Views the tokens as a fixed 8×8 grid: only the area h·w = 64 matters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        return x.flatten(2).view(b, c, 8, 8)


class Rows16(nn.Module):
    """Views the tokens as rows of 16 (and back): only h·w a multiple of 16 matters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.flatten(2).view(b, c, -1, 16).reshape(b, c, h, w)


class Level(nn.Module):
    """One U-Net level: a stride-2 2×2 conv down, an inner module, nearest ×2 up, added to the input (the add
    needs the size even)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.down, self.inner, self.up = nn.Conv2d(4, 4, 2, 2), inner, nn.Upsample(scale_factor=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.inner(self.down(x)))


class RootAdd(nn.Module):
    """The add that needs an even size happens in the network's own forward, outside every submodule."""

    def __init__(self) -> None:
        super().__init__()
        self.down, self.up = nn.Conv2d(3, 3, 2, 2), nn.Upsample(scale_factor=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.down(x))


def _runs(model: nn.Module, c: int, size: tuple[int, int]) -> bool:
    """Truth: the real network run for real."""
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, c, *size))
        return True
    except RuntimeError:
        return False


def _raiser(model: nn.Module, c: int, size: tuple[int, int]) -> str:
    """Truth for the blame: the innermost module whose ``forward`` frame is on the traceback of the real run's
    error ("" for the network itself)."""
    names = {id(m): n for n, m in model.named_modules()}
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, c, *size))
    except RuntimeError as err:
        tb, found = err.__traceback__, ""
        while tb is not None:
            me = tb.tb_frame.f_locals.get("self")
            if tb.tb_frame.f_code.co_name == "forward" and isinstance(me, nn.Module) and id(me) in names:
                found = names[id(me)]
            tb = tb.tb_next
        return found
    raise AssertionError(f"runs at {size}")


_SIZES = [(s, s) for s in range(1, 41)] + [(4, 16), (16, 4), (2, 32), (8, 9), (14, 28), (28, 14), (7, 14), (12, 24),
                                           (16, 32), (6, 8), (24, 8), (56, 28), (42, 70)]


def _agrees(model: nn.Module, found: InputRule, extra: list[tuple[int, int]]) -> None:
    """The stated rule predicts the real network at every size tried and at sizes the sweep never ran."""
    assert found.rule.simple, found.text
    c = found.input_shape[0]
    for size in {*_SIZES, *extra, *(s[1:] for s in found.tried)}:
        assert found.rule.admits(size) == _runs(model, c, size), f"{found.text} at {size}"


def test_stride_levels_give_multiples_of_8_blamed_where_python_raises() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Level(Level(Level(nn.Identity()))))
    stitched, report = bs.stitch(model, input_shape=(3, 32, 32), insert=[{"after": "0", "block": {"kind": "se"}}])
    found = report.input_rule
    assert found is not None and found.rule.text == "h and w multiples of 8"
    _agrees(stitched, found, [(64, 72), (80, 80)])
    assert found.culprits, found.text
    refused = [s[1:] for s in found.tried if not found.rule.admits(s[1:]) and min(s[1:]) >= 16]
    truth = {_raiser(stitched, 3, s) for s in refused}
    assert {c.path for c in found.culprits} == truth and "" not in truth
    assert report.to_dict()["input_rule"]["rule_text"] == "h and w multiples of 8"
    assert "input sizes: h and w multiples of 8 (because of " in str(report)


def test_window_block_at_a_size_it_does_not_tile_is_named() -> None:
    base = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.PixelUnshuffle(2), nn.Conv2d(16, 8, 1))
    stitched, report = bs.stitch(base, input_shape=(3, 28, 28), insert=[{"after": "2", "block": Window,
                                                                           "args": {"k": 7}}])
    found = report.input_rule
    assert found is not None and found.rule.text == "h and w multiples of 14"
    _agrees(stitched, found, [(70, 42)])
    window = next(e.module for e in report.edits)
    assert _raiser(stitched, 3, (16, 16)) == window  # even: the unshuffle runs, the window does not tile
    assert _raiser(stitched, 3, (15, 15)) == "1"  # odd: the unshuffle itself refuses
    assert [c.path for c in found.culprits] == [window, "1"]
    assert [c.type for c in found.culprits] == ["Window", "PixelUnshuffle"]
    assert found.text.endswith(f"(because of Window at {window} and PixelUnshuffle at 1)")
    problem = found.refusal((3, 30, 30))
    assert problem is not None and "breaks the stitched network's rule: h and w multiples of 14" in problem
    suggested = found.nearest((3, 30, 30))
    assert suggested == [(3, 28, 28), (3, 42, 42)] and all(_runs(stitched, 3, s[1:]) for s in suggested)
    assert found.refusal((3, 42, 42)) is None


def test_an_area_only_rule() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Grid8(), nn.Conv2d(4, 4, 1))
    found = input_rule(model, (3, 8, 8))
    assert found is not None and found.rule.text == "h·w = 64" and found.rule.kind == "area"
    _agrees(model, found, [(1, 64), (64, 1), (32, 2)])
    assert [c.path for c in found.culprits] == ["1"] == [_raiser(model, 3, (9, 9))]
    assert found.nearest((3, 9, 9)) == [(3, 8, 8), (3, 16, 4)]


def test_an_area_multiple_rule() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Rows16())
    found = input_rule(model, (3, 12, 12))
    assert found is not None and found.rule.text == "h·w a multiple of 16", found.text
    _agrees(model, found, [(2, 8), (8, 2), (1, 48), (3, 16), (6, 8), (12, 4), (10, 10)])
    nearest = found.nearest((3, 10, 10))
    assert nearest and all(_runs(model, 3, s[1:]) for s in nearest)


def test_no_blame_when_the_network_itself_raises() -> None:
    model = RootAdd()
    found = input_rule(model, (3, 8, 8))
    assert found is not None and found.rule.text == "h and w multiples of 2"
    _agrees(model, found, [])
    assert _raiser(model, 3, (9, 9)) == "" and found.culprits == [] and found.text == "h and w multiples of 2"


def test_the_model_is_never_called() -> None:
    calls = []
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Window(4))
    model.register_forward_pre_hook(lambda m, a: calls.append(a))
    found = input_rule(model, (3, 8, 8))
    assert found is not None and found.rule.text == "h and w multiples of 4" and calls == []


_PLUGIN = '''
    from __future__ import annotations
    from typing import Literal
    from torch import nn
    from blockstitch import BlockSpec, register_block

    class Window(nn.Module):
        def __init__(self, k: int):
            super().__init__()
            self.k, self.mix = k, nn.Linear(k * k, k * k)
        def forward(self, x):
            b, c, h, w = x.shape
            k = self.k
            t = x.view(b, c, h // k, k, w // k, k).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h // k, w // k, k * k)
            return self.mix(t).reshape(b, c, h // k, w // k, k, k).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h, w)

    @register_block
    class WindowSpec(BlockSpec):
        """k×k windows, no padding."""
        kind: Literal["nopad_window"] = "nopad_window"
        k: int = 2
        in_layouts = None
        def out_shape(self, in_shapes): return tuple(in_shapes[0])
        def macs(self, in_shapes): return 0
        def build(self, in_shapes): return Window(self.k)
'''


@pytest.fixture()
def window_edit(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    from blockstitch import registry

    before = set(registry._REGISTRY)
    plugin = tmp_path / "win.py"
    plugin.write_text(textwrap.dedent(_PLUGIN))
    edit = tmp_path / "edit.yaml"
    edit.write_text("name: win\nextends: resnet18\ninput: [3, 64, 64]\ninsert:\n"
                    "  - {after: layer4, block: {kind: nopad_window, k: 2}}\n")
    yield plugin, edit
    builtin = registry.builtin_index()
    for kind in set(registry._REGISTRY) - before - set(builtin):  # the plugin's kinds, its module class's too
        del registry._REGISTRY[kind]  # (not built-in families imported meanwhile): no other test sees them


@pytest.mark.parametrize("command", ["bench", "profile", "check"])
def test_a_bad_input_is_refused_before_any_real_forward(window_edit: tuple[Path, Path], command: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    plugin, edit = window_edit
    real: list[str] = []

    def count(module: nn.Module, args: tuple[object, ...]) -> None:
        if any(isinstance(a, torch.Tensor) and not a.is_meta for a in args):
            real.append(type(module).__name__)

    hook = torch.nn.modules.module.register_module_forward_pre_hook(count)
    try:
        code = main(["--plugin", str(plugin), command, str(edit), "--input", "3,96,96"])
    finally:
        hook.remove()
    err = capsys.readouterr().err
    assert code == 2 and real == [], (code, real)
    assert "--input" in err and "input 3×96×96" in err and "because of Window at layer4_nopad_window" in err
    tries = [tuple(map(int, t)) for t in re.findall(r"(\d+)×(\d+)×(\d+)", err.split("try ")[1])]
    assert len(tries) == 2 and all(t != (3, 96, 96) for t in tries)
    from blockstitch.subject import subject

    model = subject(str(edit), accept={"edit"}).module("cpu")  # truth: the real network at each size said
    assert not _runs(model, 3, (96, 96)) and all(_runs(model, 3, t[1:]) for t in tries)


def test_check_states_the_rule_by_default_and_runs_a_good_input(window_edit: tuple[Path, Path],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    plugin, edit = window_edit
    assert main(["--plugin", str(plugin), "check", str(edit), "--input", "3,128,128"]) == 0
    out = capsys.readouterr().out
    assert "input sizes: " in out and "because of Window at layer4_nopad_window" in out
    assert "input 3×128×128: the stitched network runs at it" in out
    assert main(["--plugin", str(plugin), "check", str(edit), "--sizes"]) == 0  # old command lines still work


def test_an_input_over_the_limits_is_said_as_such(window_edit: tuple[Path, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    plugin, edit = window_edit
    assert main(["--plugin", str(plugin), "check", str(edit), "--input", "3,999999,999999"]) == 2
    err = capsys.readouterr().err
    assert "--input" in err and "at most 65,536" in err and "rule" not in err
