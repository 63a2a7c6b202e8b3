"""check-module says a layout works only when the channel argument binds to that layout's channel axis: probed
with c, h and w apart, and compared with the b c h w run on the same numbers. The truth: the module run here on
the permuted input, with plain PyTorch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.check.probes.channel_axis import layout_sizes

FAST = {"channels": False}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small real runs on one thread


class ECA(nn.Module):
    """ECA (Wang et al. 2020) as papers write it, for b c h w: pool, a 1-d conv across channels, gate."""

    def __init__(self, channels: int = 16, k: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3)).unsqueeze(1)  # b 1 c
        return x * self.conv(y).sigmoid().transpose(1, 2).unsqueeze(-1)  # b c 1 1


class SE(nn.Module):
    """Squeeze-and-excitation for b c h w, with channel-sized layers."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // 4), nn.ReLU(), nn.Linear(channels // 4, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3))).sigmoid()[:, :, None, None]


class ChannelsLastNorm(nn.Module):
    """A genuinely channels-last module: LayerNorm over c and a pointwise Linear, on b h w c (or b n c)."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.norm, self.fc = nn.LayerNorm(channels), nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc(self.norm(x))


def test_the_layout_probe_keeps_c_h_and_w_apart() -> None:
    for c in (8, 9, 12, 14, 16, 64):
        for h, w in layout_sizes("b h w c", c):
            assert c not in (h, w)
        assert all(n != c for (n,) in layout_sizes("b n c", c))
    assert any(h != w for h, w in layout_sizes("b h w c", 8))


def test_eca_on_channels_last_runs_but_treats_h_as_channels() -> None:
    m = ECA(16).eval()
    x = torch.randn(2, 9, 12, 16)  # b h w c
    with torch.no_grad():
        runs = m(x)  # it runs …
        right = m(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # … but the b c h w result, laid out, is another
    assert runs.shape == x.shape and not torch.allclose(runs, right)
    r = bs.check_module(m, input=None, **FAST)
    assert r.layouts["b c h w"] == "works"
    assert r.layouts["b h w c"].startswith("runs but treats h as channels"), r.layouts
    assert "b h w c" not in r.check("layouts").message.split(";")[0]


def test_se_with_channel_sized_layers_does_not_run_on_channels_last_by_coincidence() -> None:
    m = SE(8).eval()  # at 8×8 (the old probe's size, h = w = c) b h w c would run, gating the rows
    with torch.no_grad():
        m(torch.randn(2, 8, 8, 8))
    with pytest.raises(RuntimeError):
        m(torch.randn(2, 9, 12, 8))  # c kept apart from h and w: it cannot
    r = bs.check_module(m, input=None, **FAST)
    assert r.layouts["b c h w"] == "works" and r.layouts["b h w c"] != "works"
    assert r.layout == "b c h w"


def test_a_channels_last_module_works_on_channels_last() -> None:
    m = ChannelsLastNorm(16).eval()
    with pytest.raises(RuntimeError):
        m(torch.randn(2, 16, 9, 12))  # b c h w: normalises w, which is not 16 wide
    r = bs.check_module(m, input=None, **FAST)
    assert r.layouts["b h w c"] == "works" and r.layouts["b n c"] == "works" and r.layouts["b c h w"] != "works"


def test_an_elementwise_module_works_in_every_layout() -> None:
    r = bs.check_module(nn.GELU(), input=None, axes={"c": 16}, **FAST)
    assert set(r.layouts.values()) == {"works"}, r.layouts


def test_a_declared_channels_last_layout_is_compared_too() -> None:
    eca = bs.check_module(ECA(16), input="b h w c", **FAST).check("channel axis")
    assert eca is not None and eca.status == "failed" and not eca.required
    assert eca.message.startswith("runs but treats h as channels")
    norm = bs.check_module(ChannelsLastNorm(16), input="b h w c", **FAST).check("channel axis")
    assert norm is not None and norm.status == "skipped" and "b c h w does not run" in norm.message
    gelu = bs.check_module(nn.GELU(), input="b h w c", axes={"c": 16}, **FAST).check("channel axis")
    assert gelu is not None and gelu.status == "passed"
    assert bs.check_module(nn.GELU(), input="b c h w", axes={"c": 16}, **FAST).check("channel axis") is None
