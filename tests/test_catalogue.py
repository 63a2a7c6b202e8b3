"""The catalogue: `blockstitch blocks --json/--category/--search/KIND/--markdown`, card rules, the generated
library pages (they must be current), and `bs.fuse` on a module of our own that follows the protocol."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import blockstitch as bs
from blockstitch.blockspec import CATEGORIES
from blockstitch.catalogue import Rule, by_category, card_text, entries, entry, parse_rule, rule_admits, search
from blockstitch.catalogue_docs import doc_paths, library_markdown
from blockstitch.cli import main
from blockstitch.errors import RegistryError


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_blocks_json_lists_every_kind_with_its_card(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "blocks", "--json")
    rows = json.loads(out)
    assert code == 0 and {r["kind"] for r in rows} == set(bs.block_kinds())
    for r in rows:
        assert {"kind", "category", "paper", "aliases", "inputs", "layouts", "size_rule", "channel_rule"} <= set(r)
        assert r["category"] in CATEGORIES
    se = next(r for r in rows if r["kind"] == "se")
    assert se["paper"]["year"] == 2018 and se["paper"]["url"].startswith("https://") and se["inputs"] == 1
    assert se["layouts"] == {"in": ["b c h w"], "out": "b c h w"}


def test_blocks_category_and_search(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "blocks", "--category", "attention", "--json")
    kinds = {r["kind"] for r in json.loads(out)}
    assert code == 0 and {"se", "cbam", "eca", "coord_attn"} <= kinds
    assert all(entry(k).category == "attention" for k in kinds)
    for query in ("coordatt", "Coord_Att", "coord att", "COORD-ATT"):
        assert "coord_attn" in [e.kind for e in search(query)], query
    assert "se" in [e.kind for e in search("squeeze-and-excitation")]  # paper titles count
    assert search("no such block anywhere") == []
    code, out, _ = _run(capsys, "blocks", "--search", "coordatt")
    assert code == 0 and "coord_attn" in out and "cbam" not in out


def test_blocks_kind_prints_the_card(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "blocks", "coord_attn")
    assert code == 0
    for text in ("Coordinate Attention for Efficient Mobile Network Design", "CVPR 2021", "arxiv.org",
                 "CoordAtt", "size rule", "reduction = 32", "kind: coord_attn", "identity_init: true", "insert"):
        assert text in out, text
    assert _run(capsys, "blocks", "CoordAtt")[1] == out  # an alias finds the same card
    code, out, _ = _run(capsys, "blocks", "patch_embed")  # a block that changes the shape: no insert line
    assert "out_channels: 16" in out and "identity_init" not in out and "min:patch_size" in out


def test_unknown_kind_and_category_exit_2_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "blocks", "cbma")
    assert code == 2 and "unknown block kind 'cbma'" in err and "did you mean 'cbam'" in err
    code, _, err = _run(capsys, "blocks", "--category", "atention")
    assert code == 2 and "did you mean 'attention'" in err
    with pytest.raises(RegistryError, match="unknown category"):
        by_category("nope")


def test_rules_parse_resolve_and_admit() -> None:
    assert parse_rule("any") == Rule("any") and parse_rule("fixed:14x21") == Rule("fixed", (14, 21))
    assert parse_rule("multiple_of:8") == Rule("multiple_of", 8)
    rule = parse_rule("multiple_of:heads", ("heads",))
    assert rule.resolve(bs.get_block("mhsa").model_validate({"heads": 4})) == Rule("multiple_of", 4)
    for bad in ("multiple_of:", "even", "min:0", "fixed:7"):
        with pytest.raises(RegistryError, match="rule"):
            parse_rule(bad)
    with pytest.raises(RegistryError, match="did you mean 'heads'"):
        parse_rule("multiple_of:head", ("heads",))
    assert rule_admits(Rule("multiple_of", 4), (8, 12)) and not rule_admits(Rule("multiple_of", 4), (8, 13))
    assert rule_admits(Rule("square"), (7, 7)) and not rule_admits(Rule("square"), (7, 9))
    assert rule_admits(Rule("min", 3), (3, 9)) and not rule_admits(Rule("min", 3), (2, 9))
    area = parse_rule("area:14x14")  # any map of 196 positions
    assert area == Rule("area", (14, 14)) and rule_admits(area, (7, 28)) and not rule_admits(area, (14, 15))
    assert "paper" in card_text("se") and len(entries()) == len(bs.block_kinds())


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_library_pages_are_current(lang: str) -> None:
    path = doc_paths()[lang]
    expected = library_markdown(lang)
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    assert current == expected, (f"{path} is not what the registry generates; regenerate it with "
                                 "`python -m blockstitch.catalogue_docs --write` and commit both pages")
    for e in entries(builtin_only=True):
        assert f"`{e.kind}`" in current


class _TwoBranch(nn.Module):
    """A re-parameterisable toy: conv3x3 + conv1x1 (padded), folded into one conv — the protocol's shape."""

    def __init__(self) -> None:
        super().__init__()
        self.k3, self.k1 = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.k3(x) + self.k1(x)

    def fuse(self) -> nn.Module:
        conv = nn.Conv2d(4, 4, 3, padding=1)
        with torch.no_grad():
            conv.weight.copy_(self.k3.weight + nn.functional.pad(self.k1.weight, [1, 1, 1, 1]))
            conv.bias.copy_(self.k3.bias + self.k1.bias)
        return conv


def test_fuse_folds_a_copy_and_leaves_the_model_alone() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(_TwoBranch(), nn.ReLU(), nn.Sequential(_TwoBranch()))
    model[2].train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(1, 4, 9, 7)
    fused, report = bs.fuse(model, example=x)
    assert [f.path for f in report.fused] == ["0", "2.0"] and report.params_saved == 2 * (4 * 4 + 4)
    assert isinstance(fused[0], nn.Conv2d) and not fused.training
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-5
    assert isinstance(model[0], _TwoBranch) and model.training and model[2].training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert "2 module(s) folded" in str(report)
    assert not bs.fuse(nn.Linear(2, 2))[1].fused
