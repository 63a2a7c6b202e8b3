"""The resolver looks names up and never imports them; limits name their numbers; real builds that cannot fit
in free memory are refused with the estimate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import blockstitch as bs
from blockstitch.bench import bench
from blockstitch.assemble import limits, load_file
from blockstitch.errors import SpecError
from blockstitch.sources import CommandLine, foreign_model, resolve, user_class

HOSTILE = Path(__file__).parent / "hostile"


def test_names_resolve_to_registry_entries() -> None:
    assert resolve("resnet18").what == "spec"
    assert resolve("se").what == "block"
    assert resolve("timm:resnet18").what == "timm"
    assert resolve("torchvision:resnet18").what == "torchvision"
    assert resolve(str(HOSTILE / "weights_corrupt_pt.yaml")).what == "edit"
    assert foreign_model("torchvision:resnet18", "meta").fc.out_features == 1000
    with pytest.raises(SpecError, match="timm has no model 'resnet5O' — did you mean"):
        resolve("timm:resnet5O")


def test_code_is_named_only_on_the_command_line() -> None:
    with pytest.raises(SpecError, match="names Python code"):
        resolve("torch.nn:ReLU")
    with pytest.raises(SpecError, match="only a command-line argument"):
        user_class("torch.nn:ReLU")
    assert resolve(CommandLine("torch.nn:ReLU")).what == "code"
    assert user_class(CommandLine("torch.nn:ReLU")).__name__ == "ReLU"


def test_names_read_from_a_file_never_name_code_even_marked() -> None:
    origin = load_file(HOSTILE / "lenet_tiny.yaml")
    with pytest.raises(SpecError, match="can never import code") as info:
        resolve(CommandLine("torch.nn:ReLU"), origin=origin, loc=("nodes", 0))
    assert info.value.file == origin.file and info.value.line == 5


def test_extends_chain_is_followed_as_data_and_bounded(tmp_path: Path) -> None:
    for i in range(limits.MAX_EXTENDS + 2):
        (tmp_path / f"e{i}.yaml").write_text(f"name: e{i}\nextends: e{i + 1}.yaml\n")
    (tmp_path / f"e{limits.MAX_EXTENDS + 2}.yaml").write_text((HOSTILE / "lenet_tiny.yaml").read_text())
    with pytest.raises(SpecError, match=f"chain longer than {limits.MAX_EXTENDS}"):
        bs.plan(str(tmp_path / "e0.yaml"))
    with pytest.raises(SpecError, match="cycle: extends_cycle_a.yaml → extends_cycle_b.yaml → extends_cycle_a.yaml"):
        bs.build(str(HOSTILE / "extends_cycle_a.yaml"), device="meta")


def test_a_build_that_cannot_fit_states_its_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "available_memory", lambda device="cpu": 10)
    with pytest.raises(SpecError, match=r"would need about .* GiB parameters .* but cpu has 0.00 GiB free"):
        bs.build("lenet5")
    with pytest.raises(SpecError, match="would need about"):  # an edit spec: counted on meta, then refused
        bs.build({"name": "e", "extends": str(HOSTILE / "lenet_tiny.yaml"),
                  "insert": [{"after": "conv_0", "block": {"kind": "se"}}]})
    model = torch.nn.Conv2d(3, 8, 3)  # bench's own check (params + activations): a result, nothing allocated
    r = bench(model, (3, 32, 32), budget_s=0.01)
    assert r.median_ms is None and r.error is not None
    assert r.error.startswith("out of memory (estimated before allocating): 'Conv2d' would need about")
    assert bs.build("lenet5", device="meta") is not None  # meta allocates nothing: never refused


@pytest.mark.parametrize("name, bound", [("out_channels", limits.MAX_CHANNELS), ("kernel_size", limits.MAX_KERNEL),
                                         ("heads", limits.MAX_HEADS), ("groups", limits.MAX_CHANNELS)])
def test_field_bounds_name_the_field_and_the_limit(name: str, bound: int) -> None:
    with pytest.raises(SpecError, match=f"'{name}' is {bound + 1:,}, more than the limit of {bound:,}"):
        limits.check_spec_numbers({name: bound + 1}, "kind 'x'")
    limits.check_spec_numbers({name: bound}, "kind 'x'")
