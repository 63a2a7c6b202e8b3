"""SECURITY.md states the limits the code enforces: its table must match the constants, number for number."""

from __future__ import annotations

import re
from pathlib import Path

from blockstitch import errors
from blockstitch.assemble import limits, names
from blockstitch.bench import sweep

DOC = Path(__file__).resolve().parents[1] / "SECURITY.md"

ROWS = {  # a row's label in SECURITY.md → the constant it states (MiB rows are converted)
    "file size (spec or sweep)": limits.MAX_FILE_BYTES / 2**20,
    "YAML aliases": limits.MAX_ALIASES,
    "values after alias expansion": limits.MAX_VALUES,
    "nesting depth": limits.MAX_DEPTH,
    "characters in one string": limits.MAX_STRING,
    "magnitude of an integer": limits.MAX_INT,
    "magnitude of a real number": limits.MAX_FLOAT,
    "nodes of a network": limits.MAX_NODES,
    "one node's `repeat`": limits.MAX_REPEAT,
    "channel-like fields": limits.MAX_CHANNELS,
    "kernel, window, patch and pool sizes": limits.MAX_KERNEL,
    "attention heads": limits.MAX_HEADS,
    "each input size": limits.MAX_INPUT_DIM,
    "elements of one input sample": limits.MAX_INPUT_ELEMENTS,
    "`width` / `depth` multipliers": limits.MAX_MULTIPLIER,
    "`extends:` chain length": limits.MAX_EXTENDS,
    "measurements in one sweep file": sweep.MAX_COMBINATIONS,
    "share of free memory": limits.MEMORY_FRACTION,
    "characters in a name": names.MAX_NAME,
    "characters of one message field echoed": errors.MAX_SHOWN,
}


def _table() -> dict[str, float]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Limits before loops", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for label, value in re.findall(r"^\| (.+?) \| ([0-9.e]+)(?: MiB)? \|$", section, flags=re.M):
        rows[label] = float(value)
    return rows


def test_security_md_states_every_limit_as_the_code_has_it() -> None:
    table = _table()
    for label, constant in ROWS.items():
        matches = [value for row, value in table.items() if row.startswith(label)]
        assert matches, f"SECURITY.md has no row for {label!r}"
        assert matches[0] == float(constant), f"SECURITY.md says {label!r} is {matches[0]}, the code {constant}"
    assert len(table) == len(ROWS), "a row in SECURITY.md that this test does not check"


def test_security_md_names_the_resolver_and_weights_loading() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "blockstitch/sources.py" in text and Path(DOC.parent / "blockstitch" / "sources.py").is_file()
    assert "weights_only=True" in text and "safetensors" in text
    assert "--plugin" in text and "CommandLine" in text


def test_security_md_states_the_no_network_memory_and_output_rules() -> None:
    from blockstitch.stitch import weights

    text = DOC.read_text(encoding="utf-8")
    assert "## No network" in text and "weights_backbone=None" in text
    assert (DOC.parent / "tests" / "test_no_network.py").is_file()
    assert "## Memory: limits before work" in text
    assert "four times the state" in text and "plus 16 MiB" in text
    assert weights.SLACK_BYTES == 16 * 2**20 and weights.weights_budget.__doc__ is not None
    assert "four times" in weights.weights_budget.__doc__
    assert f"at most {errors.MAX_SHOWN} characters" in text


def test_security_md_states_the_write_rules_of_the_one_writer() -> None:
    from blockstitch import output

    text = DOC.read_text(encoding="utf-8")
    assert "## Writing files" in text and "blockstitch/output.py" in text
    for name in ("ENOSPC", "EACCES", "EISDIR", "ENOTDIR", "ENAMETOOLONG"):
        assert name in text
        assert name in str(output.os_error(OSError(getattr(__import__("errno"), name), "x"), "f"))
