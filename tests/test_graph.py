"""Diagrams: names, kinds and shapes from meta tensors; edges where tensors flow; edits coloured; three formats."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import timm
import torch
import torchvision
from torch import nn

import blockstitch as bs
from blockstitch.errors import SpecError
from blockstitch.graph import graph, graph_record, render
from blockstitch.graph.mermaid import escape
from blockstitch.meta import fingerprint

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def cbam_record():
    return graph_record("cbam_resnet50")


def _mermaid_ok(text: str) -> None:
    """Every line is one statement of the subset we write, ids are declared before use, labels are quoted and
    carry no raw quote, bracket or '#' that GitHub's parser would read."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    declared: set[str] = set()
    node = re.compile(r'^\s+(\w+)(\["|\(\["|\(\[")(.*?)("\]|"\]\))(:::\w+)?$')
    for line in lines[1:]:
        if m := node.match(line):
            declared.add(m.group(1))
            label = m.group(3)
            assert '"' not in label and "<" not in label.replace("<br/>", "") and not re.search(r"#(?!\w+;)", label)
        elif m := re.match(r"^\s+(\w+) --> (\w+)$", line):
            assert m.group(1) in declared and m.group(2) in declared, line
        elif m := re.match(r"^\s+class ([\w,]+) (\w+)$", line):
            assert set(m.group(1).split(",")) <= declared
        else:
            assert re.match(r'^\s+(classDef \w+ [\w:#,.-]+|subgraph \w+ \[\w+\]|direction LR|end)$', line), line


def test_cbam_resnet50_in_all_three_formats(cbam_record) -> None:
    names = ["layer1.0.conv1", "layer4.2.bn3", "layer1.0.bn3_cbam", "layer4.2.bn3_cbam", "fc"]
    mermaid, dot, svg = (render(cbam_record, f) for f in ("mermaid", "dot", "svg"))
    for text in (mermaid, dot, svg):
        assert all(n in text for n in names)
        assert "inserted: 16 × cbam" in text  # the legend
    _mermaid_ok(mermaid)
    assert mermaid.count(":::insert") == 1 and re.search(r"^  class (n\d+,){15}n\d+ insert$", mermaid, re.M)
    assert dot.startswith('digraph "cbam_resnet50" {') and dot.rstrip().endswith("}")
    assert dot.count('fillcolor="#c8f7c5"') == 17  # 16 CBAM boxes + the legend entry
    root = ET.fromstring(svg)
    boxes = [(g.get("data-name"), g.find(f"{SVG}rect")) for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    assert len(boxes) == len(cbam_record.nodes)
    cbam = [name for name, rect in boxes if rect.get("fill") == "#c8f7c5"]
    assert cbam == cbam_record.legend["insert"] and len(cbam) == 16 and all(n.endswith(".bn3_cbam") for n in cbam)
    rects = [tuple(float(r.get(k)) for k in ("x", "y", "width", "height")) for _, r in boxes]
    rects.sort(key=lambda r: (r[1], r[0]))
    for i, (x, y, w, h) in enumerate(rects):  # no two boxes overlap
        for x2, y2, w2, h2 in rects[i + 1:]:
            if y2 >= y + h:
                break
            assert x + w <= x2 or x2 + w2 <= x, "boxes overlap"
    width, height = float(root.get("width")), float(root.get("height"))
    assert all(x >= 0 and y >= 0 and x + w <= width and y + h <= height for x, y, w, h in rects)


def test_shapes_and_kinds_match_the_plan() -> None:
    plan = bs.plan("resnet50", (3, 96, 96))
    record = graph_record("resnet50", (3, 96, 96), depth=2)
    for step in plan.steps:
        node = record.node(step.name)
        assert node.shape == step.out.shape and node.kind == step.kind
    stages = graph_record("resnet50", (3, 96, 96), depth=1)
    assert [n.name for n in stages.nodes] == ["input", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2",
                                               "layer3", "layer4", "avgpool", "flatten", "fc", "output"]
    assert stages.node("layer3").kind == "bottleneck ×6" and stages.node("layer3").shape == (1, 1024, 6, 6)
    assert ("layer4", "avgpool") in stages.edges and len(stages.edges) == 12


def test_edges_follow_the_tensors_of_a_timm_model() -> None:
    record = graph_record(timm.create_model("resnet18"), (3, 64, 64))
    edges = set(record.edges)
    assert {("layer1.0.bn2", "layer1.0.act2"), ("maxpool", "layer1.0.act2")} <= edges  # x += shortcut
    assert {("layer2.0.downsample.1", "layer2.0.act2"), ("layer1.1.act2", "layer2.0.downsample.0")} <= edges
    assert record.node("layer2.0.conv1").shape == (1, 128, 8, 8)
    assert record.node("output").shape == (1, 1000) and ("fc", "output") in edges


def test_a_shared_module_gets_the_path_of_each_caller() -> None:
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov8n.yaml", verbose=False)  # one SiLU instance shared by every Conv
    record = graph_record(model, (3, 64, 64), depth=2)
    assert [n.name for n in record.nodes[1:4]] == ["model.0", "model.1", "model.2"]
    assert {("model.6", "model.11"), ("model.4", "model.14"), ("model.9", "model.20")} <= set(record.edges)
    assert record.node("model.11").kind == "Concat" and record.node("model.11").shape == (1, 384, 4, 4)


def test_the_user_module_is_untouched_and_never_called() -> None:
    model = torchvision.models.resnet18().train()
    calls = []
    model.register_forward_hook(lambda *a: calls.append(1))
    before = fingerprint(model)
    text = graph(model, "dot", input_shape=(3, 32, 32))
    assert "layer1.0.conv1" in text and not calls and fingerprint(model) == before and model.training


def test_replace_wrap_remove_are_coloured_and_in_the_legend(tmp_path) -> None:
    base = timm.create_model("resnet18")
    model, report = bs.stitch(base, input_shape=(3, 64, 64),
                              replace=[{"path": "layer4.1.conv2", "block": {"kind": "conv", "out_channels": 512}}],
                              wrap=[{"path": "layer3.1"}], remove=[{"path": "layer1.1.act1"}],
                              insert=[{"after": "layer2", "block": {"kind": "se"}, "identity_init": True}])
    record = graph_record(model, (3, 64, 64), report=report)
    assert record.node("layer4.1.conv2").edit == "replace" and record.node("layer4.1.conv2").kind == "conv"
    assert record.node("layer3.1").edit == "wrap"  # drawn as one box
    assert record.node("layer1.1.act1").edit == "remove" and record.node("layer2_se").edit == "insert"
    assert record.legend == {"insert": ["layer2_se"], "replace": ["layer4.1.conv2"], "wrap": ["layer3.1"],
                             "remove": ["layer1.1.act1"]}
    assert ("layer2.1.act2", "layer2_se") in record.edges and ("layer2_se", "layer3.0.conv1") in record.edges
    svg = graph(model, "svg", tmp_path / "s.svg", input_shape=(3, 64, 64), report=report)
    assert all(word in svg for word in ("inserted: 1 × se", "replaced: 1 × conv", "wrapped: 1 × gated",
                                        "removed: 1 × identity"))
    ET.fromstring((tmp_path / "s.svg").read_text())


def test_graph_on_the_command_line(tmp_path, capsys) -> None:
    from blockstitch.cli import main

    out = tmp_path / "net.mmd"
    assert main(["graph", "resnet18", "--depth", "1", "-o", str(out), "--input", "3,32,32"]) == 0
    assert "layer4<br/>basic ×2 · 1×512×1×1" in out.read_text()
    assert f"{out}: mermaid, 13 nodes, 12 edges" in capsys.readouterr().out
    assert main(["graph", "timm:resnet18", "--format", "dot", "--depth", "1"]) == 0
    assert '"layer1\\nSequential · 1×64×56×56"' in capsys.readouterr().out
    assert main(["graph", "resnet18", "-o", str(tmp_path / "no" / "net.svg")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["graph", "resnet81"]) == 2
    assert "did you mean 'resnet18'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["graph", "resnet18", "--format", "png"])
    assert exit_info.value.code == 2


def test_bad_arguments_are_located_errors() -> None:
    with pytest.raises(SpecError, match="unknown graph format 'mermiad' — did you mean 'mermaid'"):
        graph("resnet18", "mermiad")
    with pytest.raises(SpecError, match="needs an input shape"):
        graph_record(nn.Sequential(nn.Linear(4, 4)))
    with pytest.raises(SpecError, match="does not run at input 1×3×8×8"):
        graph_record(nn.Sequential(nn.Linear(4, 4)), (3, 8, 8))
    with pytest.raises(SpecError, match="depth must be ≥ 1"):
        graph_record("resnet18", depth=0)


def test_module_called_twice_and_escaping() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(torch.relu(self.lin(x)))

    record = graph_record(Twice(), (8,))
    assert [n.name for n in record.nodes] == ["input", "lin", "lin#2", "output"]
    assert record.edges == [("input", "lin"), ("lin", "lin#2"), ("lin#2", "output")]
    assert escape('a"b<c>#d&') == "a#quot;b#lt;c#gt;#35;d#amp;"
    _mermaid_ok(render(record, "mermaid"))


def test_mermaid_over_githubs_limits_is_flagged() -> None:
    from blockstitch.graph.mermaid import github_limits

    small = render(graph_record("lenet5"), "mermaid")
    assert github_limits(small) is None
    chain = "flowchart TD\n" + "".join(f"  n{i} --> n{i + 1}\n" for i in range(501))
    assert github_limits(chain) == "too large for GitHub: 501 edges (GitHub draws at most 500); use --depth"


def test_graph_with_input_prints_to_stdout_and_writes_no_file(tmp_path, monkeypatch, capsys) -> None:
    """`graph NET --input …` without -o prints the diagram; nothing lands in the working directory."""
    from blockstitch.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["graph", "lenet5", "--input", "1,32,32"]) == 0
    assert capsys.readouterr().out.startswith("flowchart") and list(tmp_path.iterdir()) == []
