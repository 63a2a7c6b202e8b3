"""Start-up: what each entry point imports (checked in fresh processes), the lazy registry, the lazy package,
and the generated files the torch-free commands read. Timings live in benchmarks/startup.py, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import blockstitch as bs
from blockstitch.generated import INDEX_FILE, SCHEMA_FILE, ZOO_FILE, block_sources, digest, read

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "timm", "torchvision", "torchinfo", "matplotlib", "onnx", "rich.console", "pydantic")


def loaded(code: str, names: tuple[str, ...] = HEAVY) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; which of ``names`` it imported, and its exit code."""
    probe = (f"import sys\ntry:\n{''.join('    ' + line + chr(10) for line in code.splitlines())}"
             f"except SystemExit as e:\n    rc = e.code\nelse:\n    rc = 0\n"
             f"import json\nprint(json.dumps({{'rc': rc, 'loaded': [n for n in {list(names)!r} "
             "if n in sys.modules]}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def cli(*argv: str) -> str:
    return f"from blockstitch.cli import main\nrc = main({list(argv)!r})\nraise SystemExit(rc)"


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["check", "--help"], ["check", "--batch", "0", "x"],
                                  ["no-such-command"]])
def test_help_version_and_usage_errors_import_neither_torch_nor_rich(argv: list[str]) -> None:
    result = loaded(cli(*argv))
    assert result["rc"] in (0, 2) and result["loaded"] == [], result


def test_import_blockstitch_imports_no_torch_and_the_api_still_answers() -> None:
    assert loaded("import blockstitch")["loaded"] == []
    result = loaded("import blockstitch as bs\nassert bs.plan('resnet18').params == 11689512")
    assert result["rc"] == 0
    # planning a spec made of plain torch blocks imports torch, pydantic — and nothing heavier
    assert set(result["loaded"]) == {"torch", "pydantic"}, result  # type: ignore[arg-type]


COMPILER_STACK = ("torch._dynamo", "sympy")


def test_check_of_own_blocks_runs_no_meta_op_unless_verify() -> None:
    """torch's first meta op imports its compiler stack (torch 2.14: ~1 s); `check resnet18` needs none of it."""
    bare = set(loaded("import torch\ntorch.nn.Conv2d(3, 8, 3)", COMPILER_STACK)["loaded"])  # type: ignore[arg-type]
    fast = loaded(cli("check", "resnet18", "--json"), COMPILER_STACK)
    assert fast["rc"] == 0 and set(fast["loaded"]) <= bare, fast  # type: ignore[arg-type]
    # the swin window index is worked out on the CPU, ViT's initialisers are skipped on meta
    assert set(loaded(cli("check", "swin_t", "--json"), COMPILER_STACK)["loaded"]) <= bare  # type: ignore[arg-type]


TINY_SE = ("{'name': 'tiny', 'input': [8, 6, 6], 'nodes': [{'kind': 'conv', 'out_channels': 16}, "
           "{'kind': 'se', 'reduction': 4}]}")


def test_the_registry_imports_only_the_family_asked_for_and_timm_only_for_its_blocks() -> None:
    code = ("from blockstitch.registry import get_block\nget_block('conv')\n"
            "fams = sorted(m for m in sys.modules if m.startswith('blockstitch.blocks.'))\n"
            "assert 'blockstitch.blocks.conv' in fams and 'blockstitch.blocks.attention' not in fams, fams\n"
            "assert not any(m.startswith('blockstitch.blocks.library.') for m in fams), fams\n"
            "assert 'timm' not in sys.modules\n"
            f"import blockstitch as bs\nbs.plan({TINY_SE})\n"  # se is timm's SEModule: now timm is needed
            "assert 'timm' in sys.modules")
    assert loaded(code)["rc"] == 0


def test_a_user_block_cannot_take_a_built_in_kind_that_is_not_imported_yet() -> None:
    code = ("from typing import Literal\nfrom blockstitch import BlockSpec, RegistryError, register_block\n"
            "class Mine(BlockSpec):\n    kind: Literal['cbam'] = 'cbam'\n"
            "try:\n    register_block(Mine)\nexcept RegistryError as e:\n    assert 'already registered' in str(e)\n"
            "else:\n    raise AssertionError('no error')\n"
            "register_block(Mine, replace=True)\n"
            "import blockstitch.blocks.attention\n"  # the built-in family loads again: the user's block stays
            "from blockstitch.registry import get_block\nassert get_block('cbam') is Mine")
    assert loaded(code)["rc"] == 0


def test_functions_keep_their_names_over_subpackages(monkeypatch: pytest.MonkeyPatch) -> None:
    import blockstitch.bench.timing  # noqa: F401  (importing a subpackage records it on the parent)
    import blockstitch.profile.report  # noqa: F401
    import blockstitch.stitch.paths  # noqa: F401

    assert callable(bs.profile) and bs.profile.__module__ == "blockstitch.profile"
    assert callable(bs.bench) and callable(bs.stitch) and callable(bs.fuse)
    from blockstitch import profile

    assert profile is bs.profile
    monkeypatch.setattr(bs, "profile", len)  # assigning still works (and is undone)
    assert bs.profile is len
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bs.nope  # noqa: B018
    assert set(bs.__all__) <= set(dir(bs))


def test_make_divisible_is_timms_rule() -> None:
    from timm.layers import make_divisible as timms

    from blockstitch.blocks.ops import make_divisible

    for value in [0.5, 1, 3.9, 4, 7.5, 8, 12, 15.99, 16, 24.1, 75, 100, 333.3, 1000]:
        for divisor in (1, 3, 4, 8, 16):
            for round_limit in (0.0, 0.9):
                for min_value in (None, 1, 32):
                    assert make_divisible(value, divisor, min_value, round_limit) == \
                        timms(value, divisor, min_value, round_limit), (value, divisor, min_value, round_limit)


def _current(file: Path) -> bool:
    from blockstitch.regenerate import zoo_digest

    return read(file, zoo_digest() if file == ZOO_FILE else digest(block_sources())) is not None


def test_generated_files_are_current_and_hold_what_the_code_computes() -> None:
    from blockstitch.regenerate import stale

    old = stale()
    assert not old, f"stale: {[p.name for p in old]} — run `python -m blockstitch.regenerate` and commit them"
    # recomputed in a fresh process: this one's registry holds whatever earlier tests registered (plugins)
    code = ("import json, sys; from blockstitch.regenerate import live_index, live_schema;"
            "from blockstitch.generated import INDEX_FILE, SCHEMA_FILE, block_sources, digest, read;"
            "d = digest(block_sources()); same = lambda f, live: read(f, d) == json.loads(json.dumps(live));"
            "sys.exit(0 if same(INDEX_FILE, live_index()) and same(SCHEMA_FILE, live_schema()) else 1)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, "the generated index or schema differs from what the code computes: " + \
        done.stderr[-2000:]
    rows = {r["name"]: r for r in read(ZOO_FILE, __import__("blockstitch.regenerate").regenerate.zoo_digest())}
    for name in ("resnet18", "cbam_resnet50"):  # a plain spec and an edit spec, recomputed
        prof = bs.profile(name)
        assert (rows[name]["params"], rows[name]["gmacs"]) == (prof.params, prof.macs / 1e9)


def test_catalogue_entries_survive_the_index_round_trip() -> None:
    from blockstitch.catalogue import Entry, entry_of
    from blockstitch.registry import block_classes

    for cls in block_classes():
        entry = entry_of(cls)
        assert Entry.from_dict(json.loads(json.dumps(entry.to_dict()))) == entry


@pytest.mark.parametrize("argv", [["schema"], ["zoo", "--json"], ["blocks"]])
def test_schema_zoo_and_blocks_answer_without_torch_from_current_files(argv: list[str]) -> None:
    if not all(_current(f) for f in (INDEX_FILE, SCHEMA_FILE, ZOO_FILE)):
        pytest.skip("generated files are stale: test_generated_files_are_current_and_hold_what_the_code_computes "
                    "says which")
    result = loaded(cli(*argv), ("torch", "timm", "torchvision"))
    assert result == {"rc": 0, "loaded": []}, result


def test_stale_files_are_not_trusted(tmp_path: Path) -> None:
    from blockstitch.generated import write

    target = tmp_path / "x.json"
    write(target, {"a": 1}, "digest-one")
    assert read(target, "digest-one") == {"a": 1} and read(target, "digest-two") is None
    target.write_text("{not json")
    assert read(target, "digest-one") is None
