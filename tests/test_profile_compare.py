"""`profile A --compare B C …`: each network under the name it was asked for by, every Δ against A, in every
output format — checked against each network profiled on its own."""

from __future__ import annotations

import csv
import io
import json

import pytest

import blockstitch as bs
from blockstitch.cli import main
from blockstitch.profile.compare import METRICS, compare

EDIT = "name: lenet5_se\nextends: lenet5\ninsert:\n  - {after: conv2, block: {kind: se, reduction: 2}}\n"
WIDE = ("name: wide\ninput: [1, 32, 32]\nnodes:\n  - {id: c, kind: conv, out_channels: 12, kernel_size: 5}\n"
        "  - {id: f, kind: flatten}\n  - {id: o, kind: linear, out_features: 10}\n")


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("nets")
    (folder / "lenet5_se.yaml").write_text(EDIT)
    (folder / "wide.yaml").write_text(WIDE)
    return ["lenet5", str(folder / "lenet5_se.yaml"), str(folder / "wide.yaml")]


@pytest.fixture(scope="module")
def truth(nets: list[str]) -> list[dict[str, int]]:
    """Each network profiled alone: the totals the comparison must show."""
    return [{m: int(getattr(bs.profile(n), m)) for m, _ in METRICS} for n in nets]


def test_json_has_every_network_by_name_with_deltas(nets, truth, capsys) -> None:
    assert main(["profile", *nets[:1], "--compare", *nets[1:], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["baseline"] == "lenet5" and [r["name"] for r in data["networks"]] == nets
    for row, want in zip(data["networks"], truth):
        for metric, _ in METRICS:
            assert row[metric] == want[metric]
            assert row[f"{metric}_delta"] == want[metric] - truth[0][metric]
    assert truth[1]["params"] > truth[0]["params"]  # the SE block is counted: the comparison is not of equals


def test_csv_rows_are_the_profiles(nets, truth, capsys) -> None:
    assert main(["profile", *nets[:1], "--compare", *nets[1:], "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in rows] == nets
    for row, want in zip(rows, truth):
        assert int(row["macs"]) == want["macs"] and int(row["params_delta"]) == want["params"] - truth[0]["params"]
        pct = 100 * (want["flops"] - truth[0]["flops"]) / truth[0]["flops"]
        assert float(row["flops_delta_pct"]) == pytest.approx(pct, abs=1e-4)


def test_markdown_and_table_name_each_network(nets, truth, capsys) -> None:
    assert main(["profile", *nets[:1], "--compare", *nets[1:], "--markdown"]) == 0
    md = capsys.readouterr().out
    assert md.splitlines()[2] == "| | " + " | ".join(nets) + " |"
    assert f"| params | {truth[0]['params']:,} | {truth[1]['params']:,} " in md
    assert main(["profile", *nets[:1], "--compare", *nets[1:]]) == 0
    text = capsys.readouterr().out.replace("\n", "")
    assert "vs lenet5 — input 1×1×32×32" in text
    for want in truth:
        assert f"{want['macs']:,}" in text


def test_python_api_numbers_a_repeated_name() -> None:
    c = compare(["lenet5", "lenet5"])
    assert c.names == ["lenet5", "lenet5 #2"] and c.delta(1, "macs") == (0, 0.0)
    with pytest.raises(bs.SpecError, match="at least two"):
        compare(["lenet5"])


def test_the_title_names_both_networks(capsys) -> None:
    assert main(["profile", "resnet18", "--compare", "lenet5", "--input", "3,32,32"]) == 0
    assert "lenet5 vs resnet18" in capsys.readouterr().out


def test_long_names_are_shown_whole_in_the_table(tmp_path, capsys) -> None:
    """Two spec paths that differ only at their end: each column header must read back as its whole name
    (the table used to cut both to the same "…/lenet5_with_squee…")."""
    names = []
    for suffix in ("a", "b"):
        path = tmp_path / f"lenet5_with_a_long_descriptive_name_for_its_squeeze_excitation_variant_{suffix}.yaml"
        path.write_text(EDIT)
        names.append(str(path))
    assert main(["profile", "lenet5", "--compare", *names]) == 0
    lines = capsys.readouterr().out.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    bottom = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    pieces = [[cell.strip() for cell in line.strip("┃").split("┃")] for line in lines[top + 1:bottom]]
    headers = ["".join(column) for column in zip(*pieces, strict=True)]
    assert headers[1] == "lenet5" and headers[2] == names[0] and headers[5] == names[1]
