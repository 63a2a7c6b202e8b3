"""The ablation file: located errors, limits, variant names, and shape errors refused before any training."""

from __future__ import annotations

from pathlib import Path

import pytest

from blockstitch.ablate.file import MAX_VARIANTS, load_ablation
from blockstitch.ablate.run import prepare
from blockstitch.ablate.variants import expand
from blockstitch.errors import SpecError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY = str(EXAMPLES / "tiny_resnet.yaml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ablation.yaml"
    path.write_text(text)
    return path


def test_the_example_reads_and_names_its_grid() -> None:
    spec, located = load_ablation(EXAMPLES / "ablation.yaml")
    names = [v.name for v in expand(spec, located)]
    blocks = [b if isinstance(b, str) else b["kind"] for b in spec.grid.block]
    assert names == ["baseline"] + [f"{b}@layer*" for b in blocks]
    assert spec.seeds == [0, 1] and spec.recipe_model().epochs >= 1


def test_variants_then_grid_product_in_order() -> None:
    spec, _ = load_ablation({"base": TINY, "data": "d", "variants": [
        {"name": "se2", "insert": [{"after": "layer2", "block": {"kind": "se"}}]}],
        "grid": {"block": ["eca", {"kind": "simam"}], "after": ["layer1", "layer*"], "identity_init": [False, True]}})
    names = [v.name for v in expand(spec)]
    assert names == ["baseline", "se2", "eca@layer1", "eca@layer1+id", "eca@layer*", "eca@layer*+id",
                     "simam@layer1", "simam@layer1+id", "simam@layer*", "simam@layer*+id"]
    assert expand(spec)[3].edits == {"insert": [{"after": "layer1", "block": {"kind": "eca"}, "identity_init": True}]}


@pytest.mark.parametrize(("text", "match", "line"), [
    ("base: x\ndata: d\nrecipe: {epoch: 3}\n", "epoch", 3),
    ("base: x\ndata: d\nvariants:\n  - name: a\n    insert:\n      - {aftr: layer1, block: {kind: eca}}\n", "aftr", 6),
    ("base: x\ndata: d\nseeds: [0, 0]\n", "twice", None),
    ("base: x\ndata: d\nvariants:\n  - {name: baseline}\n", "row 0", 4),
    ("base: x\ndata: d\ngrid: {block: [eca]}\n", "exactly one", 3),
    ("base: x\ndata: {generate: shapes, classes: 100000}\n", "less than or equal to 8", 2),
    ("base: x\ndata: {generate: shapez}\n", "shapes", 2),
])
def test_mistakes_are_located(tmp_path: Path, text: str, match: str, line: int | None) -> None:
    with pytest.raises(SpecError, match=match) as info:
        load_ablation(write(tmp_path, text))
    assert info.value.file is not None and info.value.file.endswith("ablation.yaml")
    if line is not None:
        assert info.value.line == line


def test_duplicate_names_and_too_many_variants(tmp_path: Path) -> None:
    text = f"base: {TINY}\ndata: d\nvariants:\n  - {{name: a}}\n  - {{name: a}}\n"
    spec, located = load_ablation(write(tmp_path, text))
    with pytest.raises(SpecError, match="two variants are named 'a'") as info:
        expand(spec, located)
    assert info.value.line == 5
    many = {"base": TINY, "data": "d", "grid": {"block": [f"b{i}" for i in range(MAX_VARIANTS)], "after": ["x", "y"]}}
    with pytest.raises(SpecError, match=f"at most {MAX_VARIANTS}"):
        expand(load_ablation(many)[0])


def test_a_base_naming_code_is_refused(tmp_path: Path) -> None:
    (tmp_path / "evil.py").write_text("raise SystemExit('ran')\n")
    with pytest.raises(SpecError) as info:
        prepare(write(tmp_path, "base: evil.py:Net\ndata: d\nmetric: top1\n"))
    assert info.value.line == 1


def test_shape_error_refused_before_training_located(tmp_path: Path) -> None:
    """A variant whose block cannot take the shape at its place fails in phase (a), located at its edit."""
    text = (f"base: {TINY}\ndata: d\nmetric: top1\nvariants:\n"
            "  - name: ok\n    insert: [{after: layer1, block: {kind: eca}}]\n"
            "  - name: bad\n    replace:\n      - {path: layer3.0.conv2, block: {kind: conv, out_channels: 7}}\n")
    path = write(tmp_path, text)
    with pytest.raises(SpecError, match="variant 'bad'") as info:
        prepare(path)
    assert info.value.line == 9 and info.value.file == str(path)
    prep = prepare(path, keep_going=True)  # --keep-going: the bad variant is a row with its error
    assert [p.variant for p in prep.plans] == ["baseline", "ok", "bad"]
    assert prep.plans[2].error and "variant 'bad'" in prep.plans[2].error
    assert prep.plans[1].params > prep.plans[0].params and prep.plans[1].error is None
    assert not list(tmp_path.glob("runs*"))  # nothing trained, nothing written
