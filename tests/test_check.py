"""check_module: each planted trap is detected and named; clean and third-party modules get the right verdict."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.check.contract import parse_pattern
from blockstitch.cli import main

FAST = {"channels": False}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small real runs on one thread


class Fixed7(nn.Module):
    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, channels, 7, 7))  # a hard-coded 7×7 position map

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos


class MultipleOf4(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        pooled = x.reshape(b, c, h // 4, 4, w // 4, 4).mean((3, 5))
        return pooled.repeat_interleave(4, 2).repeat_interleave(4, 3)


class SquareOnly(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x.transpose(-1, -2)


class TokensOnly(nn.Module):
    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.norm, self.fc = nn.LayerNorm(channels), nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc(self.norm(x))


class DeadParam(nn.Module):
    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)
        self.unused = nn.Linear(channels, channels)  # declared, never called

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class CrossTalk(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # batch statistics even in eval
        return (x - x.mean(dim=0, keepdim=True)) / (x.std(dim=0, keepdim=True, unbiased=False) + 1e-5)


class NaNAtBatch1(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / x.std(dim=0, keepdim=True)  # unbiased std of one sample is NaN


class BNHead(nn.Module):
    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.pool, self.bn = nn.AdaptiveAvgPool2d(1), nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.bn(self.pool(x)).sigmoid()


def _failed(report: bs.CheckReport) -> dict[str, str]:
    return {c.name: c.message for c in report.checks if c.status == "failed"}


def test_fixed_size_is_detected_and_quoted() -> None:
    r = bs.check_module(Fixed7(), output="b c h w", **FAST)
    assert not r.ok and r.size_rule.kind == "fixed"
    assert [(c.axis, c.rule, c.value) for c in r.constraints] == [("h", "fixed", 7), ("w", "fixed", 7)]
    assert "h and w = 7" in _failed(r)["sizes"] and "works at 7×7" in _failed(r)["sizes"]


def test_multiple_of_is_inferred_with_the_modules_own_error() -> None:
    r = bs.check_module(MultipleOf4(), **FAST)
    assert [(c.axis, c.rule, c.value) for c in r.constraints] == [("h", "multiple_of", 4), ("w", "multiple_of", 4)]
    assert "RuntimeError" in _failed(r)["sizes"]  # the module's own words, quoted
    assert r.size_rule.admits((8, 12)) and not r.size_rule.admits((8, 10))


def test_square_only() -> None:
    r = bs.check_module(SquareOnly(), output="b c h w", **FAST)
    assert [(c.axis, c.rule, c.value) for c in r.constraints] == [("h", "equal", "w")]
    assert r.size_rule.kind == "square"


def test_layout_is_found_when_not_given() -> None:
    r = bs.check_module(TokensOnly(), input=None, **FAST)
    assert r.ok and r.layout == "b n c", _failed(r)
    assert r.layouts["b n c"] == "works" and "normalized_shape" in r.layouts["b c h w"]
    assert bs.check_module(TokensOnly(), input="b c h w", **FAST).ok is False


def test_dead_parameter_is_named() -> None:
    r = bs.check_module(DeadParam(), **FAST)
    assert "unused.weight" in _failed(r)["gradients"] and "conv.weight" not in _failed(r)["gradients"]
    assert r.dead_params == ["unused.weight", "unused.bias"]


def test_batch_cross_talk_in_eval() -> None:
    r = bs.check_module(CrossTalk(), **FAST)
    assert "batch independence (eval)" in _failed(r) and r.batch_independent is False
    assert "rel. diff" in _failed(r)["batch independence (eval)"]


def test_nan_at_batch_1() -> None:
    r = bs.check_module(NaNAtBatch1(), **FAST)
    assert "batch 1" in _failed(r)["finite outputs"]
    assert "degrees of freedom" in r.check("warnings").message  # the module's own warning, reported (not leaked)


def test_batch_norm_breaks_at_batch_1_in_training() -> None:
    r = bs.check_module(BNHead(), **FAST)
    msg = _failed(r)["train and eval, batch 1 and 2"]
    assert "train, batch 1" in msg and "Expected more than 1 value per channel" in msg
    assert r.modes["train, batch 2"]["error"] is None and r.modes["train, batch 1"]["error"]


@pytest.mark.parametrize("kind", ["se", "cbam", "eca", "coord_attn", "conv", "mhsa", "transformer"])
def test_registered_blocks_are_clean(kind: str) -> None:
    args = {"out_channels": 16} if kind == "conv" else {}
    r = bs.check_module(kind, input="b n c" if kind in ("mhsa", "transformer") else "b c h w", args=args,
                        axes={"c": 16})
    assert r.ok, _failed(r)
    assert r.constraints == [] and r.params > 0 and r.macs_at["macs"] > 0
    assert r.channel_rule is not None and r.channel_sweep


def test_ultralytics_blocks_by_name_with_args_bind_both_channel_parameters(capsys) -> None:
    for target, extra in (("C2f", []), ("SPPF", []), ("C3k2", []), ("CBAM", [])):
        where = "ultralytics.nn.modules.conv" if target == "CBAM" else "ultralytics.nn.modules.block"
        args = ["--arg", "c1=32"] + ([] if target == "CBAM" else ["--arg", "c2=32"]) + extra
        assert main(["check-module", f"{where}:{target}", *args, "--out", "b c h w", "--json"]) == 0, target
        data = json.loads(capsys.readouterr().out)
        assert data["ok"] and data["base"][1] == 32 and data["size_rule"]["kind"] == "any"
    # c2 inferred from c1 when left out: a shape-keeping check binds both
    assert main(["check-module", "ultralytics.nn.modules.block:C2f", "--arg", "c1=16", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sweep"][0]["output"][1] == 16


def test_compile_and_export_are_reported_when_asked() -> None:
    r = bs.check_module("se", axes={"c": 16}, compile=True, export=True, channels=False)
    info = {c.name: c.status for c in r.checks if not c.required}
    assert info["torch.export"] == "passed" and info["torch.compile(fullgraph=True, backend=aot_eager)"] == "passed"
    assert info["bfloat16 (CPU)"] == "passed"
    assert "torch.export" not in {c.name for c in bs.check_module("se", axes={"c": 16}, **FAST).checks}


def test_output_contract_with_expressions() -> None:
    assert parse_pattern("b (c*2) (h//2) w").shape({"b": 2, "c": 8, "h": 14, "w": 5}) == (2, 16, 7, 5)
    down = bs.check_module("conv", args={"out_channels": 32, "stride": 2}, output="b (c*2) (h//2) (w//2)",
                           axes={"c": 16}, **FAST)
    assert down.ok is False  # odd sizes round up with padding 1: 7 → 4, not 3
    assert [(c.rule, c.value) for c in down.constraints] == [("multiple_of", 2), ("multiple_of", 2)]


def test_failures_are_contained() -> None:
    class Raises(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("this module only works on Tuesdays")

    class Slow(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[-1] > 40:
                time.sleep(5)  # hangs on large inputs
            return x

    r = bs.check_module(Raises(), **FAST)
    assert not r.ok and "only works on Tuesdays" in _failed(r)["sizes"] and r.size_rule.simple is False
    t0 = time.perf_counter()
    slow = bs.check_module(Slow(), seconds=0.3, axes={"c": 4}, **FAST)
    assert time.perf_counter() - t0 < 15
    assert "took longer than 0.3 s" in _failed(slow)["sizes"]
    assert slow.size_rule.text.startswith("no simple rule")  # "at most 40" is not in the vocabulary


def test_memory_hungry_module_fails_without_crashing() -> None:
    class Hungry(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            big = x.new_ones(x.shape[0], 2**31)  # 8 GiB per sample at float32
            return x + big.sum(dim=1).view(-1, 1, 1, 1) * 0

    r = bs.check_module(Hungry(), max_bytes=2**30, **FAST)
    assert not r.ok and all(not s["ok"] for s in r.sweep)  # meta sizes are not claimed to work
    assert "memory" in r.sweep[0]["error"] or "alloc" in r.sweep[0]["error"]


PLUGIN = '''
import torch
from torch import nn

class Gate(nn.Module):
    def __init__(self, channels: int, scale: float = 1.0):
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)
        self.scale = scale

    def forward(self, x):
        return x * torch.sigmoid(self.scale * self.proj(x))

class Fixed(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, channels, 7, 7))

    def forward(self, x):
        return x + self.pos
'''


def test_cli_on_a_file_target_and_a_registered_block(tmp_path: Path, capsys) -> None:
    path = tmp_path / "mods.py"
    path.write_text(textwrap.dedent(PLUGIN))
    assert main(["check-module", f"{path}:Gate", "--arg", "scale=0.5", "--in", "b c h w", "--out", "b c h w",
                 "--axis", "c=32", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["layout"] == "b c h w" and data["constraints"] == [] and data["params"] == 32 * 32 + 32
    assert {"name", "status", "message"} <= set(data["checks"][0]) and data["macs_at"]["macs"] > 0
    assert main(["check-module", f"{path}:Fixed", "--out", "b c h w", "--json", "--axis", "c=8"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["constraints"] == [{"axis": "h", "rule": "fixed", "value": 7}, {"axis": "w", "rule": "fixed", "value": 7}]
    assert main(["check-module", "cbam", "--json", "--axis", "c=16", "--no-compile", "--no-export"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["check-module", "cbma"]) == 2 and "did you mean 'cbam'" in capsys.readouterr().err
    assert main(["check-module", f"{path}:Nope"]) == 2


def test_stitch_report_into_resnet50(capsys) -> None:
    assert main(["check-module", "eca", "--no-compile", "--no-export", "--into", "resnet50",
                 "--stitch-input", "3,32,32", "--no-latency", "--json", "--axis", "c=16"]) == 0
    data = json.loads(capsys.readouterr().out)["stitch"]  # sizes only (timing: tests/test_delta_latency.py)
    assert [r["at"] for r in data["rows"]] == ["layer1", "layer2", "layer3", "layer4"]
    assert [r["shape"][1] for r in data["rows"]] == [256, 512, 1024, 2048]  # channels bound from the plan
    assert all(r["params"] > 0 for r in data["rows"]) and data["baseline"]["params"] == 25_557_032
    assert main(["check-module", "cbam", "--no-compile", "--no-export", "--into", "resnet50", "--at", "layer9",
                 "--stitch-input", "3,32,32"]) == 2


def test_a_width_that_cannot_work_still_gets_the_channel_rule() -> None:
    from timm.layers import GroupNormAct

    r = bs.check_module(GroupNormAct, axes={"c": 16})  # 32 groups: 16 channels cannot be split
    assert not r.ok and r.base is None and "construction failed" in r.sweep[0]["error"]
    assert r.channel_rule.axes["c"] == ("multiple_of", 32)
    assert "c a multiple of 32" in r.check("channels").message
