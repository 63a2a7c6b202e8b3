"""The README is the front door: its commands and code must stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
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
    namespace: dict[str, object] = {"__name__": "__main__"}
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


def _python_blocks() -> list[tuple[int, str]]:
    """(line, code) of every ```python block of the README."""
    return [(README[: m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```", README, flags=re.S | re.M)]


@pytest.mark.parametrize("line, code", _python_blocks(), ids=[f"line{n}" for n, _ in _python_blocks()])
def test_every_python_block_runs_as_written(line: int, code: str, tmp_path, monkeypatch) -> None:
    """Pasted alone into a fresh interpreter, in an empty folder, each block runs: imports included, small
    inputs, nothing downloaded. (Blocks a block registers are forgotten after it, so none leans on another.)"""
    from blockstitch import registry

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    before = set(registry._REGISTRY)
    namespace: dict[str, object] = {"__name__": "__main__"}
    try:
        exec(compile(code, f"README.md:{line}", "exec", dont_inherit=True), namespace)
    finally:  # forget the blocks this one registered (built-in kinds load lazily: leave those)
        for kind in set(registry._REGISTRY) - before:
            if registry._REGISTRY[kind].__module__ == "__main__":
                del registry._REGISTRY[kind]


def test_readme_mermaid_diagram_is_what_the_tool_prints(capsys) -> None:
    from blockstitch.cli import main

    command = re.search(r"^blockstitch (graph \S+ --depth 1)\s", README, flags=re.M).group(1).split()
    assert main(command) == 0
    printed = capsys.readouterr().out
    shown = re.search(r"^```mermaid\n(.*?)^```", README, flags=re.S | re.M).group(1)
    assert shown == printed, "regenerate the README diagram with `blockstitch " + " ".join(command) + "`"
