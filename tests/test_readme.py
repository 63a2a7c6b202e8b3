"""The README is the front door: its commands and code must stay true."""

from __future__ import annotations

import re
from pathlib import Path

import torch

import blockstitch as bs

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    commands = re.findall(r"^python3 -m venv .*$", README, flags=re.M)
    assert len(commands) >= 2
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert commands[1] in ci, ".ci/run must call the README's test command verbatim"


def test_readme_plugin_example_registers_a_working_block() -> None:
    code = next(block for block in re.findall(r"```python\n(.*?)```", README, flags=re.S) if "register_block" in block)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec", dont_inherit=True), namespace)  # the README's example, as a user runs it
    plan = bs.plan({"name": "g", "input": [3, 16, 16], "nodes": [{"kind": "gated_conv", "out_channels": 8}]})
    assert plan.output_shapes() == [(1, 8, 16, 16)]
    model = bs.build(plan)
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 8, 16, 16)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, 16, 16))
    assert counter.get_total_flops() == 2 * plan.macs


def test_readme_zoo_table_is_what_the_tool_prints(capsys) -> None:
    from blockstitch.cli import main

    assert main(["zoo", "--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    between = README.split("<!-- zoo:start -->")[1].split("<!-- zoo:end -->")[0].strip()
    assert between == table, "regenerate the README table with `blockstitch zoo --markdown`"


def test_readme_edit_examples_check(tmp_path) -> None:
    from safetensors.torch import save_file

    from blockstitch.cli import main
    from blockstitch.sources import timm_model

    examples = [b for b in re.findall(r"```yaml\n(.*?)```", README, flags=re.S) if "extends:" in b]
    assert len(examples) >= 2
    save_file(timm_model("resnet50").state_dict(), str(tmp_path / "resnet50.safetensors"))
    for i, text in enumerate(examples):
        path = tmp_path / f"example{i}.yaml"
        path.write_text(text)
        assert main(["check", str(path)]) == 0, text
