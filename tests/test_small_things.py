"""Issue 25 (6): small things a user trips on — typos in edit specs, search order, `check timm:…`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blockstitch import catalogue
from blockstitch.cli import main


def test_an_edit_field_typo_gets_did_you_mean_and_the_valid_fields(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "e.yaml"
    spec.write_text("name: x\nextends: resnet18\ninsert:\n  - {afer: layer1, block: {kind: se}}\n")
    assert main(["check", str(spec)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "did you mean 'after'?" in err and f"{spec}:4:" in err and "identity_init" in err


def test_search_ranks_the_exact_kind_and_alias_first() -> None:
    entries = catalogue.entries()
    for e in entries:  # truth: the entry named exactly, whatever else contains the word
        assert catalogue.search(e.kind)[0].kind == e.kind
    aliased = [e for e in entries if e.aliases]
    for e in aliased:
        owners = [o.kind for o in entries if catalogue.normalise(e.aliases[0]) in
                  [catalogue.normalise(n) for n in (o.kind, *o.aliases)]]
        assert catalogue.search(e.aliases[0])[0].kind in owners


def test_check_accepts_a_timm_model(capsys) -> None:
    timm = pytest.importorskip("timm")
    assert main(["check", "timm:resnet18", "--input", "3,64,64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    model = timm.create_model("resnet18", pretrained=False)
    assert data["params"] == sum(p.numel() for p in model.parameters())
    assert data["outputs"] == [[1, 1000]] and data["flops"] == 2 * data["macs"] > 0


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_stitch_writes_a_network_bs_load_reads_back(tmp_path: Path, suffix: str, capsys) -> None:
    import torch

    import blockstitch as bs
    from blockstitch.stitch.archive import portable_spec, save_stitched
    from blockstitch.subject import subject

    spec = tmp_path / "edit.yaml"
    spec.write_text("name: x\nextends: resnet18\ninput: [3, 32, 32]\ninsert:\n  - {after: layer1, block: {kind: se}}\n")
    out = tmp_path / f"model{suffix}"
    assert main(["stitch", str(spec), "-o", str(out)]) == 0 and out.is_file()
    target = subject(str(spec), accept={"edit"})
    assert sum(p.numel() for p in bs.load(out).parameters()) == target.report.params_after
    torch.manual_seed(1)
    model = target.module("cpu").eval()  # another build, other weights: the archive must carry them all
    save_stitched(model, portable_spec(target.located.data, target.located.file), out)
    loaded = bs.load(out)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(bs.SpecError, match="not a stitched network"):
        bs.load(tmp_path / "plain.pt")


@pytest.mark.parametrize("block", ["{kind: se}", "{kind: gmlp}"])
def test_check_sizes_states_the_input_rule_real_runs_confirm(tmp_path: Path, block: str, capsys) -> None:
    import torch

    from blockstitch.rules import infer_rule
    from blockstitch.subject import subject

    spec = tmp_path / "edit.yaml"
    spec.write_text(f"name: x\nextends: resnet18\ninput: [3, 32, 32]\ninsert:\n  - {{after: layer1, block: {block}}}\n")
    assert main(["check", str(spec), "--sizes", "--json"]) == 0  # --sizes: kept for old command lines
    rule = json.loads(capsys.readouterr().out)["input_rule"]
    model = subject(str(spec), accept={"edit"}).module("cpu").eval()
    sizes = [tuple(s) for s in rule["tried"]]
    real = {}
    for size in sizes:  # truth: the real network, run for real at each size
        try:
            with torch.no_grad():
                model(torch.zeros(1, 3, *size))
            real[size] = True
        except RuntimeError:
            real[size] = False
    assert infer_rule(("h", "w"), real).text == rule["rule_text"]
    assert (rule["rule_text"] == "any size") == (block == "{kind: se}")
