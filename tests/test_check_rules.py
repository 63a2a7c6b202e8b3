"""check-module's size rules beyond the sides: NaN/Inf at some sizes only folded into the rule (a variance over
one pixel: "h·w ≥ 2"), and rules on the area (x.flatten(2) @ W: "h·w = 64", not "h and w = 8") — every reported
rule checked against plain PyTorch runs at sizes inside and outside it."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

import blockstitch as bs

QUICK = {"channels": False, "axes": {"c": 4}}
C = 4


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small real runs on one thread


class Variance(nn.Module):
    """Subtracts the unbiased spatial variance: NaN on a single pixel (n - 1 = 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.var(dim=(2, 3), unbiased=True, keepdim=True)


class TokenStd(nn.Module):
    """Divides by the standard deviation over tokens: NaN for one token."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / (x.std(dim=1, keepdim=True) + 1e-3)


class AlwaysNaN(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


class FlatMatmul(nn.Module):
    """x.flatten(2) @ W with W 64×64: any h×w of 64 pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(64, 64) / 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(2) @ self.w).view_as(x)


class SidesLinear(nn.Module):
    """A Linear over w, then one over h: both sides must be 8."""

    def __init__(self) -> None:
        super().__init__()
        self.along_w, self.along_h = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.along_h(self.along_w(x).transpose(-1, -2)).transpose(-1, -2)


class Position8(nn.Module):
    """A fixed 8×8 positional embedding, added."""

    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, C, 8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos


def works(module: nn.Module, shape: tuple[int, ...]) -> bool:
    """Plain PyTorch: runs, keeps the input's shape, finite output."""
    x = torch.randn(shape)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # var()/std() over one value warn, then give NaN
            out = module.eval()(x)
    except RuntimeError:
        return False
    return out.shape == x.shape and bool(torch.isfinite(out).all())


def _hw(size: tuple[int, ...]) -> tuple[int, ...]:
    return (2, C, *size)


def _agrees(report: bs.CheckReport, module: nn.Module, sizes: list[tuple[int, ...]], shape=_hw) -> None:
    """The reported rule predicts plain runs at ``sizes`` and at every size the sweep tried."""
    for size in sizes + [tuple(r["size"]) for r in report.sweep]:
        assert report.size_rule.admits(size) == works(module, shape(size)), (size, report.size_rule.text)


AROUND = [(1, 1), (1, 2), (2, 1), (1, 3), (2, 2), (3, 5), (8, 8), (1, 64), (5, 1)]


def test_nan_at_one_pixel_is_a_size_rule_and_plug_and_play() -> None:
    module = Variance()
    report = bs.check_module(module, **QUICK)
    assert report.ok, [(c.name, c.message) for c in report.checks if c.status == "failed"]
    assert [(c.axis, c.rule, c.value) for c in report.constraints] == [("h·w", "min", 2)]
    assert report.size_rule.text == "h·w ≥ 2 (at least 2 pixels)"
    _agrees(report, module, AROUND)
    sizes = report.check("sizes")
    assert sizes.status == "passed" and "only at 1×1: NaN/Inf" in sizes.message
    finite = report.check("finite outputs")
    assert finite.status == "passed" and "NaN/Inf at 1×1 only, outside the size rule" in finite.message


def test_nan_at_one_token_is_a_size_rule() -> None:
    module = TokenStd()
    report = bs.check_module(module, input="b n c", **QUICK)
    assert report.ok and report.size_rule.text == "n ≥ 2"
    _agrees(report, module, [(1,), (2,), (3,), (50,)], shape=lambda s: (2, *s, C))


def test_nan_at_every_size_stays_a_failure() -> None:
    module = AlwaysNaN()
    assert not any(works(module, _hw(s)) for s in AROUND)
    report = bs.check_module(module, **QUICK)
    assert not report.ok and report.check("finite outputs").status == "failed"
    assert "1×1" in report.check("finite outputs").message and report.nonfinite


def test_a_rule_on_the_area_names_only_shapes_that_run() -> None:
    module = FlatMatmul()
    report = bs.check_module(module, output="b c h w", **QUICK)
    assert report.size_rule.area == ("fixed", 64) and report.size_rule.text.startswith("h·w = 64 (8×8, 4×16, 2×32")
    assert [(c.axis, c.rule, c.value) for c in report.constraints] == [("h·w", "fixed", 64)]
    named = [(int(h), int(w)) for h, w in re.findall(r"(\d+)×(\d+)", report.size_rule.text)]
    assert len(named) == 3 and all(works(module, _hw(s)) and s[0] * s[1] == 64 for s in named)
    _agrees(report, module, AROUND + [(4, 16), (16, 4), (32, 2), (8, 7), (4, 8), (16, 16)])
    assert "works at 8×8" in report.check("sizes").message


@pytest.mark.parametrize("cls", [SidesLinear, Position8])
def test_a_size_fixed_on_both_sides_is_still_h_and_w(cls: type[nn.Module]) -> None:
    module = cls()
    report = bs.check_module(module, output="b c h w", **QUICK)
    assert report.size_rule.text == "h and w = 8", report.size_rule.text
    assert [(c.axis, c.rule, c.value) for c in report.constraints] == [("h", "fixed", 8), ("w", "fixed", 8)]
    tried = {tuple(r["size"]) for r in report.sweep}
    assert {(4, 16), (16, 4)} <= tried  # the same area was tried, and failed
    _agrees(report, module, [(4, 16), (2, 32), (8, 8), (8, 4)])
