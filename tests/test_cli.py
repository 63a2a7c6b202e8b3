"""The `blockstitch` command line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from blockstitch.cli import main
from blockstitch.registry import block_kinds


def test_check_prints_plan_and_params(capsys) -> None:
    assert main(["check", "specs/resnet50.yaml"]) == 0
    text = capsys.readouterr().out
    assert "25,557,032" in text and "layer4.2" in text and "1×2048×7×7" in text


def test_check_by_zoo_name_with_input_and_batch_json(capsys) -> None:
    assert main(["check", "resnet50", "--input", "3,1024,1024", "--batch", "64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == 25_557_032 and data["outputs"] == [[64, 1000]]
    assert data["flops"] == 2 * data["macs"]
    assert data["nodes"][0]["out_shape"] == [64, 64, 512, 512]


def test_blocks_lists_every_kind(capsys) -> None:
    assert main(["blocks"]) == 0
    text = capsys.readouterr().out
    assert all(kind in text for kind in block_kinds())


def test_schema_covers_every_kind(capsys) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    mapping = schema["properties"]["nodes"]["items"]["discriminator"]["mapping"]
    assert set(mapping) == set(block_kinds())
    conv = schema["$defs"]["ConvSpecNode"]["properties"]
    assert conv["out_channels"]["description"] and "from" in conv


def test_bad_usage_exits_2() -> None:
    import pytest

    with pytest.raises(SystemExit) as exc:  # argparse reports usage errors itself, with exit code 2
        main(["check", "resnet50", "--batch", "0"])
    assert exc.value.code == 2


def test_plugin_blocks_register_and_build(tmp_path, capsys) -> None:
    plugin = tmp_path / "my_blocks.py"
    plugin.write_text(textwrap.dedent('''
        from __future__ import annotations  # string annotations must not break registration
        from typing import Literal
        from torch import nn
        from blockstitch import BlockSpec, register_block

        @register_block
        class Doubler(BlockSpec):
            """Multiplies its input by two."""
            kind: Literal["doubler"] = "doubler"
            in_layouts = None
            def out_shape(self, in_shapes): return tuple(in_shapes[0])
            def macs(self, in_shapes): return 0
            def build(self, in_shapes): return Twice()

        class Twice(nn.Module):
            def forward(self, x): return 2 * x
    '''))
    spec = tmp_path / "n.yaml"
    spec.write_text("name: n\ninput: [3, 8, 8]\nnodes:\n  - {kind: doubler}\n")
    assert main(["--plugin", str(plugin), "check", str(spec)]) == 0
    assert "doubler" in capsys.readouterr().out


def test_console_script_runs_from_another_directory(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "blockstitch.cli", "check", "unet"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "31,037,698" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "blockstitch.cli", "check", "nope.yaml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "not found" in bad.stderr
