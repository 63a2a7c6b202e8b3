"""Bad input gets a clear, located error, and nothing else; the CLI prints it without a traceback, exit 2."""

from __future__ import annotations

import re

import pytest

import blockstitch as bs
from blockstitch.cli import main
from blockstitch.errors import ShapeError, SpecError

HEAD = "name: n\ninput: [3, 32, 32]\nnodes:\n"

# (case, spec text, error type, message regex, line the error must point at, node it must name)
CASES = [
    ("unknown_kind", HEAD + "  - {id: a, kind: conv, out_channels: 8}\n  - {id: b, kind: cbma}\n",
     SpecError, r"unknown block kind 'cbma' — did you mean 'cbam'\?", 5, "b"),
    ("misspelled_field", HEAD + "  - id: a\n    kind: conv\n    out_chanels: 8\n",
     SpecError, r"unknown field 'out_chanels' for kind 'conv' — did you mean 'out_channels'\?", 6, "a"),
    ("wrong_type", HEAD + "  - id: a\n    kind: conv\n    out_channels: eight\n",
     SpecError, r"valid integer", 6, "a"),
    ("missing_field", HEAD + "  - id: a\n    kind: conv\n    stride: 2\n",
     SpecError, r"missing required field 'out_channels' for kind 'conv'", 4, "a"),
    ("bad_choice", HEAD + "  - {id: a, kind: conv, out_channels: 8, act: rleu}\n",
     SpecError, r"did you mean 'relu'\?", 4, "a"),
    ("missing_from", HEAD + "  - {id: a, kind: conv, out_channels: 8}\n  - {id: b, kind: conv, out_channels: 8, from: aa}\n",
     SpecError, r"'from' names 'aa', which is not a node — did you mean 'a'\?", 5, "b"),
    ("cycle", HEAD + "  - {id: a, kind: conv, out_channels: 8, from: c}\n  - {id: b, kind: conv, out_channels: 8}\n"
     "  - {id: c, kind: conv, out_channels: 8}\n", SpecError, r"cycle: a ← c ← b ← a", 4, "a"),
    ("duplicate_id", HEAD + "  - {id: a, kind: conv, out_channels: 8}\n  - {id: a, kind: conv, out_channels: 8}\n",
     SpecError, r"duplicate node id 'a' \(first used at line 4\)", 5, "a"),
    ("merge_channels", HEAD + "  - {id: a, kind: conv, out_channels: 8}\n  - {id: b, kind: conv, out_channels: 16}\n"
     "  - {id: s, kind: add, from: [a, b]}\n", ShapeError, r"(?s)'add' needs inputs of one shape.*a 1×8×32×32, b 1×16×32×32",
     6, "s"),
    ("merge_spatial", "name: n\ninput: [3, 33, 33]\nnodes:\n  - {id: a, kind: conv, out_channels: 8}\n"
     "  - {id: b, kind: conv, out_channels: 8, stride: 2}\n  - {id: u, kind: interpolate, scale: 2}\n"
     "  - {id: s, kind: concat, from: [a, u]}\n", ShapeError,
     r"(?s)differ in spatial size.*policy: pad.*policy: crop.*a 1×8×33×33, u 1×8×34×34", 7, "s"),
    ("up_odd_sizes", "name: n\ninput: [3, 33, 33]\nnodes:\n  - {id: a, kind: conv, out_channels: 8}\n"
     "  - {id: d, kind: maxpool, kernel_size: 2}\n  - {id: u, kind: up, out_channels: 8, from: [d, a], policy: error}\n",
     ShapeError, r"(?s)upsampled input 32×32 does not match skip 33×33.*policy: pad", 6, "u"),
    ("unbridgeable", HEAD + "  - {id: p, kind: patch_embed, out_channels: 16, patch_size: 8}\n  - {id: e, kind: pos_embed}\n"
     "  - {id: c, kind: conv, out_channels: 8}\n", ShapeError,
     r"cannot bridge tokens back to 'b c h w': 17 tokens are 1 prefix token\(s\) \+ a 4×4 grid", 6, "c"),
    ("no_bridge_to_flat", HEAD + "  - {id: f, kind: flatten}\n  - {id: c, kind: conv, out_channels: 8}\n",
     ShapeError, r"no bridge from layout 'b c' to 'b c h w'", 5, "c"),
    ("yaml_syntax", "name: n\ninput: [3, 32, 32\nnodes: []\n", SpecError, r"invalid YAML", 3, None),
    ("python_tag", "name: !!python/object/apply:os.system [ls]\ninput: [3, 32, 32]\nnodes: []\n",
     SpecError, r"YAML tag .*python/object/apply:os.system.* is not allowed", 1, None),
    ("empty_file", "", SpecError, r"empty spec file", None, None),
    ("list_root", "- a\n- b\n", SpecError, r"root must be a mapping", 1, None),
    ("zero_size", "name: n\ninput: [3, 0, 32]\nnodes:\n  - {id: a, kind: conv, out_channels: 8}\n",
     SpecError, r"input\[1\]: Input should be greater than 0", 2, None),
    ("negative_channels", HEAD + "  - {id: a, kind: conv, out_channels: -8}\n",
     SpecError, r"out_channels.*greater than 0", 4, "a"),
    ("too_small", "name: n\ninput: [3, 8, 8]\nnodes:\n  - {id: a, kind: conv, out_channels: 8, stride: 2}\n"
     "  - {id: b, kind: maxpool, kernel_size: 2}\n  - {id: c, kind: conv, out_channels: 8, kernel_size: 5, padding: 0}\n",
     ShapeError, r"(?s)input too small for 'conv'.*over 2×2.*larger --input", 6, "c"),
    ("arity", HEAD + "  - {id: a, kind: conv, out_channels: 8}\n  - {id: b, kind: conv, out_channels: 8, from: [input, a]}\n",
     SpecError, r"'conv' takes 1 input\(s\) but 'from' gives 2.*", 5, "b"),
    ("nested_kind", HEAD + "  - {id: a, kind: basic, out_channels: 8, attention: {kind: sse}}\n",
     SpecError, r"unknown block kind 'sse' — did you mean 'se'\?", 4, "a"),
    ("bad_default", "name: n\ninput: [3, 32, 32]\ndefaults: {nrom: batchnorm}\n"
     "nodes:\n  - {id: a, kind: conv, out_channels: 8}\n",
     SpecError, r"'nrom' is not a field of any block — did you mean 'norm'\?", 3, None),
    ("unknown_top_field", "name: n\ninputs: [3, 32, 32]\nnodes:\n  - {id: a, kind: conv, out_channels: 8}\n",
     SpecError, r"unknown field 'inputs' for the network spec — did you mean 'input'\?", 2, None),
    ("heads", HEAD + "  - {id: a, kind: conv, out_channels: 10}\n  - {id: t, kind: mhsa, heads: 4}\n",
     ShapeError, r"10 channels do not split into 4 heads", 5, "t"),
    ("groups", HEAD + "  - {id: a, kind: conv, out_channels: 10, groups: 4}\n",
     ShapeError, r"groups=4 needs in and out channels divisible by 4", 4, "a"),
    ("container_clash", HEAD + "  - {id: layer1, kind: conv, out_channels: 8}\n  - {id: layer1.0, kind: conv, out_channels: 8}\n",
     SpecError, r"node id 'layer1' is also the container of 'layer1.0'", 4, "layer1"),
    ("bad_repeat", HEAD + "  - {id: a, kind: conv, out_channels: 8, repeat: 0}\n",
     SpecError, r"'repeat' must be a positive integer", 4, "a"),
    ("no_kind", HEAD + "  - {id: a, out_channels: 8}\n", SpecError, r"node has no 'kind'", 4, "a"),
    ("patch_multiple", "name: n\ninput: [3, 30, 32]\nnodes:\n  - {id: p, kind: patch_embed, out_channels: 8, patch_size: 8}\n",
     ShapeError, r"input 30×32 is not a multiple of patch_size 8", 4, "p"),
]


@pytest.mark.parametrize("case, text, error, match, line, node", CASES, ids=[c[0] for c in CASES])
def test_bad_spec_is_located(write_spec, case, text, error, match, line, node) -> None:
    path = write_spec(text, f"{case}.yaml")
    with pytest.raises(error, match=match) as info:
        bs.plan(path)
    err = info.value
    assert err.file == str(path)
    assert str(err).startswith(str(path)), "the message must start with file:line"
    if line is not None:
        assert err.line == line, f"expected line {line}, got {err.line}: {err}"
        assert re.match(rf"{re.escape(str(path))}:{line}[:\s]", str(err))
    if node is not None:
        assert err.node == node


@pytest.mark.parametrize("case, text, error, match, line, node", CASES[:6] + CASES[8:10] + CASES[14:16],
                         ids=[c[0] for c in CASES[:6] + CASES[8:10] + CASES[14:16]])
def test_cli_prints_error_without_traceback_and_exits_2(write_spec, capsys, case, text, error, match, line,
                                                       node) -> None:
    path = write_spec(text, f"{case}.yaml")
    assert main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert f"{path}" in captured.err and "error" in captured.err
    assert re.search(match, captured.err.replace("\n", " ")) or re.search(match, captured.err)


def test_dict_spec_errors_name_the_path() -> None:
    with pytest.raises(SpecError, match=r"nodes\[0\]\.out_channels .*greater than 0"):
        bs.plan({"name": "n", "input": [3, 8, 8], "nodes": [{"kind": "conv", "out_channels": 0}]})


def test_unknown_zoo_name_suggests() -> None:
    with pytest.raises(SpecError, match=r"no spec file or zoo network named 'resnet5' — did you mean 'resnet50'\?"):
        bs.plan("resnet5")


def test_input_override_rank_mismatch() -> None:
    with pytest.raises(SpecError, match=r"--input has 2 dims but the spec's input has 3"):
        bs.plan("resnet50", (224, 224))


def test_nothing_in_a_spec_executes_code(write_spec, tmp_path) -> None:
    marker = tmp_path / "pwned"
    text = f"name: !!python/object/apply:os.system ['touch {marker}']\ninput: [3, 8, 8]\nnodes: []\n"
    with pytest.raises(SpecError, match="not allowed"):
        bs.plan(write_spec(text))
    assert not marker.exists()
    with pytest.raises(SpecError, match="unknown block kind 'os.system'"):
        bs.plan({"name": "n", "input": [3, 8, 8], "nodes": [{"kind": "os.system"}]})
