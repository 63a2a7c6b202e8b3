"""An ablation's trials are keyed by what produced them: editing a file the base ``extends:`` or a plugin block's
code (same class name, new body) trains those trials again and the run names what changed; an unchanged file
reuses every trial and says so. Truth: the trainer scores a model by its parameter count (+ seed), so a re-run
row's metric is the parameter count of the network the new files build, counted here with plain PyTorch."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from blockstitch import registry
from blockstitch.ablate import ablate
from blockstitch.ablate.progress import Events
from blockstitch.bench.digest import target_digest, target_parts
from blockstitch.bench.sweep import SweepSpec, plan_sweep, run_sweep
from blockstitch.registry import load_plugin_file

from ablate_helpers import TINY_BASE, spec, trainer_file

torch.set_num_threads(1)

PLUGIN = '''
import torch
from torch import nn


class Gain(nn.Module):
    """A per-channel gain ({n} parameter(s) per channel)."""

    def __init__(self, in_channels):
        super().__init__()
        self.gain = nn.Parameter(torch.ones({n}, in_channels))

    def forward(self, x):
        return x * self.gain.sum(0).view(1, -1, 1, 1)
'''


class Notes(Events):
    """Keeps the driver's notes."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture()
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Loads ``blocks.py`` (``Gain`` with ``n`` parameters per channel) the way ``--plugin`` does; loading again
    after an edit stands for the next command-line run (a fresh process). The registry is left as it was."""
    assert "Gain" not in registry._REGISTRY

    def load(n: int, folder: str = "v1") -> Path:
        path = tmp_path / folder / "blocks.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(PLUGIN.format(n=n))
        registry._REGISTRY.pop("Gain", None)
        for name in [m for m in sys.modules if m.startswith("blockstitch_user_blocks_")]:
            monkeypatch.delitem(sys.modules, name)
        assert load_plugin_file(path) == ["Gain"]
        return path

    yield load
    registry._REGISTRY.pop("Gain", None)  # the registry as it was (built-ins loaded meanwhile stay, as they would)
    for name in [m for m in sys.modules if m.startswith("blockstitch_user_blocks_")]:
        monkeypatch.delitem(sys.modules, name)


def _files(tmp_path: Path, layer2: int = 16) -> Path:
    """``net.yaml`` extends ``base.yaml`` (the tiny base; ``layer2``'s width) and inserts ECA after layer2."""
    base = dict(TINY_BASE, nodes=[dict(n) for n in TINY_BASE["nodes"]])
    base["nodes"][2]["out_channels"] = layer2
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    net = tmp_path / "net.yaml"
    net.write_text("name: net\nextends: base.yaml\ninsert:\n  - {after: layer2, block: {kind: eca}}\n")
    return net


def _params(layer2: int, gain: int = 0) -> int:
    """The baseline's and the Gain variant's parameter count, in plain PyTorch (the truth the rows must hold)."""
    from torch import nn

    def basic(cin: int, cout: int, stride: int) -> list[nn.Module]:
        mods: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                 nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)]
        if stride != 1 or cin != cout:
            mods += [nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)]
        return mods

    mods = [nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), *basic(8, 8, 1), *basic(8, layer2, 2),
            nn.Conv1d(1, 1, 3, bias=False), nn.Linear(layer2, 2)]  # ECA: one 1-d conv (k=3 at these widths)
    return sum(p.numel() for m in mods for p in m.parameters()) + gain * 8


def _run(tmp_path: Path, net: Path, variants: list[dict[str, Any]]) -> tuple[Any, list[str]]:
    notes = Notes()
    result = ablate(spec(base=str(net), seeds=[0], variants=variants), run_dir=tmp_path / "run",
                    trainer=trainer_file(tmp_path), events=notes, plot=False)
    return result, notes.lines


def test_an_edited_extended_file_or_plugin_retrains_and_says_why(tmp_path: Path, plugin) -> None:
    plugin(1)
    net = _files(tmp_path)
    variants = [{"name": "gain1", "insert": [{"after": "layer1", "block": {"kind": "Gain"}}]}]
    first, _ = _run(tmp_path, net, variants)
    scores = {r["variant"]: r["metrics"]["acc"] for r in first.rows}
    assert first.counts["new"] == 2 and scores == {"baseline": _params(16), "gain1": _params(16, gain=1)}

    same, lines = _run(tmp_path, net, variants)  # (c) nothing changed: every trial reused, and said so
    assert same.counts == {"reused": 2, "new": 0, "retried": 0, "stale": 0}
    assert any(line.startswith("reused 2 finished trial(s)") for line in lines)
    assert not any("re-run" in line for line in lines)

    _files(tmp_path, layer2=24)  # (a) the file the base extends is edited; net.yaml itself is not
    edited, lines = _run(tmp_path, net, variants)
    assert edited.counts["new"] == 2 and edited.counts["reused"] == 0
    assert "2 trial(s) re-run because what produced them changed (spec base.yaml changed): baseline/s0, gain1/s0" \
        in lines
    scores = {r["variant"]: r["metrics"]["acc"] for r in edited.rows}
    assert scores == {"baseline": _params(24), "gain1": _params(24, gain=1)}

    plugin(3, "v2")  # (b) the plugin's block edited: same file name, same class name, a new body
    changed, lines = _run(tmp_path, net, variants)
    assert changed.counts["new"] == 1 and changed.counts["reused"] == 1  # the baseline does not use the block
    assert "1 trial(s) re-run because what produced them changed (code blocks.py changed): gain1/s0" in lines
    row = next(r for r in changed.rows if r["variant"] == "gain1")
    assert not row["reused"] and row["metrics"]["acc"] == _params(24, gain=3)
    rows = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 + 2 + 1  # appended: each changed trial once more, the reused ones never


def test_a_block_given_as_a_class_is_keyed_by_its_code(tmp_path: Path, plugin) -> None:
    """A variant's block given in Python as an nn.Module class: its file's bytes are part of the digest."""
    from blockstitch.ablate.provenance import trial_parts

    path = plugin(1)
    gain = registry._REGISTRY["Gain"].module_class  # type: ignore[attr-defined]
    edits = {"insert": [{"after": "layer1", "block": gain}]}
    before = trial_parts({}, {}, edits, {}, "classify", None, "d", None)
    assert before["code blocks.py"] and before == trial_parts({}, {}, edits, {}, "classify", None, "d", None)
    path.write_text(PLUGIN.format(n=2))
    assert trial_parts({}, {}, edits, {}, "classify", None, "d", None)["code blocks.py"] != before["code blocks.py"]


def test_a_sweep_target_is_keyed_by_its_bases_and_plugin_code(tmp_path: Path, plugin) -> None:
    """(d) the sweep's digest: a target extending another file, and a plugin block it uses."""
    path = plugin(1)
    base = tmp_path / "base.yaml"
    base.write_text("name: b\ninput: [3, 8, 8]\nnodes:\n  - {name: c, kind: conv, out_channels: 8}\n")
    target = tmp_path / "t.yaml"
    target.write_text(f"name: t\nextends: {base}\ninsert:\n  - {{after: c, block: {{kind: Gain}}}}\n")
    parts = target_parts(str(target))
    assert sorted(parts) == ["code blocks.py", "spec base.yaml", "spec t.yaml"]
    before = target_digest(str(target))
    assert target_digest(str(target)) == before
    out = tmp_path / "sweep.jsonl"
    sweep = SweepSpec(targets=[str(target), "lenet5"], batch=[1], budget_s=0.01)
    calls: list[str] = []
    run_sweep(sweep, out, runner=_runner(calls))
    assert calls == ["t.yaml", "lenet5.yaml"] and plan_sweep(sweep, out).todo == []  # (c) unchanged: all reused
    path.write_text(PLUGIN.format(n=2))  # the plugin's code changed: so did what the sweep would measure
    assert target_digest(str(target)) != before
    base.write_text(base.read_text().replace("out_channels: 8", "out_channels: 4"))  # and the base t extends
    plan = plan_sweep(sweep, out)
    assert [e["target"] for e in plan.stale] == [str(target)] and [e["target"] for e in plan.reused] == ["lenet5"]
    assert plan.why == {str(target): ["code blocks.py changed", "spec base.yaml changed"]}
    calls.clear()
    run_sweep(sweep, out, runner=_runner(calls))
    assert calls == ["t.yaml"]  # only the changed target measured again


def _runner(calls: list[str]):
    """A stand-in for bench: records what it was asked to measure (the sweep's bookkeeping is under test)."""
    from blockstitch.bench import BenchResult

    def runner(target, shape, batch, **kw) -> BenchResult:
        calls.append(Path(target).name if target.endswith(".yaml") else f"{target}.yaml")
        return BenchResult(target, "cpu", "cpu", kw["dtype"], batch, [3, 8, 8], kw["mode"], 1.0, 0.9, 1.1, 1000.0,
                           None, None, 0.1, 0.5, torch.__version__)
    return runner


def test_a_data_folder_is_keyed_by_its_listing(tmp_path: Path) -> None:
    """Names and sizes, not bytes or times: an added or resized image changes the key, a touch or a copy does not."""
    import os
    import shutil

    from blockstitch.ablate.provenance import data_fingerprint

    data = tmp_path / "data"
    (data / "train" / "cat").mkdir(parents=True)
    (data / "train" / "cat" / "a.png").write_bytes(b"1234")
    before = data_fingerprint(data)
    os.utime(data / "train" / "cat" / "a.png", (1, 1))
    shutil.copytree(data, tmp_path / "copy")
    assert data_fingerprint(data) == before == data_fingerprint(tmp_path / "copy")
    (data / "train" / "cat" / "a.png").write_bytes(b"12345")
    resized = data_fingerprint(data)
    (data / "train" / "cat" / "b.png").write_bytes(b"")
    assert len({before, resized, data_fingerprint(data)}) == 3
