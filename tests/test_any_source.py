"""Issue 25 (5, 6): check-module and plugins every way in — any common source encoding, no arguments for a
library kind, a missing constructor argument as a usage error, a class typed on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from torch import nn

from blockstitch.cli import main
from blockstitch.registry import block_classes, block_kinds, import_file
from blockstitch.required import fill_required, missing_required

SOURCE = '''# 注意力模块：论文代码
import torch
from torch import nn


class {name}(nn.Module):
    """通道注意力"""

    def __init__(self, channels):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return x * self.fc(x.mean((2, 3), keepdim=True)).sigmoid()
'''

ARGS = '''
from torch import nn


class NeedsK(nn.Module):
    def __init__(self, channels, k):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, k, padding=k // 2)

    def forward(self, x):
        return self.conv(x)


class WithNorm(nn.Module):
    def __init__(self, channels, norm_layer=nn.Identity):
        super().__init__()
        self.norm = norm_layer(channels)

    def forward(self, x):
        return self.norm(x)
'''


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_source_files_in_common_encodings_import(tmp_path: Path, encoding: str, capsys) -> None:
    name = f"Attn{encoding.replace('-', '_').title().replace('_', '')}"
    file = tmp_path / f"paper_{encoding.replace('-', '_')}.py"
    file.write_bytes(SOURCE.format(name=name).encode(encoding))
    module = import_file(file)
    assert getattr(module, name).__doc__ == "通道注意力"  # the text as written, decoded right
    assert main(["check-module", f"{file}:{name}"]) == 0
    net = tmp_path / "net.yaml"
    net.write_text(f"name: tiny\ninput: [3, 16, 16]\nnodes:\n  - {{kind: conv, out_channels: 8}}\n  - {{kind: {name}}}\n")
    assert main(["check", str(net), "--plugin", str(file)]) == 0  # --plugin after the command too
    assert name in capsys.readouterr().out


def test_an_undecodable_source_file_is_a_located_message(tmp_path: Path, capsys) -> None:
    file = tmp_path / "bad.py"
    file.write_bytes(b"x = 1\ny = '\xff\xfe\x80'\n")
    assert main(["check-module", f"{file}:X"]) == 2
    err = capsys.readouterr().err
    assert f"{file}:2:6" in " ".join(err.split()) and "0xff" in err and "internal error" not in err


def test_a_missing_constructor_argument_is_a_usage_error_with_the_arg_line(tmp_path: Path, capsys) -> None:
    file = tmp_path / "args.py"
    file.write_text(ARGS)
    assert main(["check-module", f"{file}:NeedsK"]) == 2
    assert "--arg k=VALUE" in capsys.readouterr().err
    assert main(["check-module", f"{file}:NeedsK", "--arg", "k=3"]) == 0


def test_a_class_typed_on_the_command_line_is_passed(tmp_path: Path, capsys) -> None:
    file = tmp_path / "args.py"
    file.write_text(ARGS)
    capsys.readouterr()
    assert main(["check-module", f"{file}:WithNorm", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)["params"]
    assert main(["check-module", f"{file}:WithNorm", "--arg", "norm_layer=torch.nn:BatchNorm2d", "--json"]) == 0
    with_bn = json.loads(capsys.readouterr().out)["params"]
    channels = with_bn // 2  # truth: BatchNorm2d(c) has a weight and a bias of c each; Identity has none
    assert plain == 0 and with_bn == 2 * channels > 0
    assert with_bn == sum(p.numel() for p in nn.BatchNorm2d(channels).parameters())


def test_required_fields_are_bound_from_the_input_or_the_paper() -> None:
    for cls in block_classes():
        kind = cls.model_fields["kind"].default
        filled, notes = fill_required(cls, {}, 96)
        assert not missing_required(cls, filled), kind  # every library kind builds without arguments
        assert len(notes) == len(missing_required(cls, {}))
        cls.model_validate({"kind": kind, **filled})
    swin = next(c for c in block_classes() if c.model_fields["kind"].default == "swin_block")
    assert fill_required(swin, {}, 96)[0] == {"heads": 3} and fill_required(swin, {}, 100)[0] == {"heads": 2}


def test_check_module_of_a_kind_with_a_required_width_binds_it(capsys) -> None:
    assert main(["check-module", "c2f"]) in (0, 1)
    assert "bound: out_channels = 64" in capsys.readouterr().out


def test_check_module_binds_every_library_kind_without_arguments(capsys) -> None:
    """The fast half of the test below, in every run: a usage error (exit 2: a required field nobody bound) comes
    before any forward, so a budget too small for one forward ('too slow', exit 1) still reaches it (~5 s)."""
    bad = {}
    for kind in block_kinds():
        code = main(["check-module", kind, "--time-budget", "0.001", "--json"])
        if code not in (0, 1):
            bad[kind] = capsys.readouterr().err.strip()[:200]
        capsys.readouterr()
    assert not bad, bad


@pytest.mark.slow  # every library kind: about 3 s each on the 2-core dev VM (several minutes in all)
def test_check_module_on_every_library_kind_without_arguments_is_never_a_usage_error(capsys) -> None:
    bad = {}
    for kind in block_kinds():
        code = main(["check-module", kind, "--json"])
        if code not in (0, 1):
            bad[kind] = capsys.readouterr().err.strip()[:200]
        capsys.readouterr()
    assert not bad, bad
