"""``ultralytics:`` names in the one resolver: shipped YAMLs with random weights, nothing downloaded, located
errors; edit specs, profile and graph on them; ``stitch`` takes a ``YOLO``; without ultralytics, one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("ultralytics")

import blockstitch as bs
from blockstitch.errors import SpecError
from blockstitch.subject import subject

EDIT = """name: yolov8n_cbam
extends: ultralytics:yolov8n.yaml
input: [3, 64, 64]
insert:
  - after: model.[2468]
    block: {kind: cbam}
    identity_init: true
"""


@pytest.mark.parametrize("name", ["yolov8n.yaml", "yolo11s.yaml"])
def test_a_shipped_yaml_builds_what_ultralytics_builds(name: str) -> None:
    from ultralytics.nn.tasks import DetectionModel

    s = subject(f"ultralytics:{name}")
    assert (s.what, s.name, s.input_shape) == ("ultralytics", f"ultralytics:{name}", (3, 640, 640))
    meta = s.module("meta")
    theirs = DetectionModel(name, verbose=False)
    assert [(k, v.shape) for k, v in meta.state_dict().items()] == [(k, v.shape) for k, v in theirs.state_dict().items()]
    assert all(p.is_meta for p in meta.parameters())
    assert torch.equal(meta.stride, theirs.stride)  # real strides: the head can still make its anchors


@pytest.mark.parametrize("name, match", [
    ("ultralytics:yolov8q.yaml", "ships no model 'yolov8q.yaml' — did you mean"),
    ("ultralytics:../evil.yaml", "ships no model"),
    ("ultralytics:missing.pt", "checkpoint not found"),
    ("ultralytics:yolov8n", "neither a model YAML nor a .pt"),
])
def test_bad_names_are_located_errors(name: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        subject(name)


def test_a_yaml_of_ones_own_is_refused(tmp_path: Path) -> None:
    """Ultralytics' parser evaluates text from the YAML (the activation): a file names shipped YAMLs only."""
    own = tmp_path / "mine.yaml"
    own.write_text("nc: 1\nactivation: __import__('os').getcwd()\nbackbone: []\nhead: []\n")
    with pytest.raises(SpecError, match="ships no model"):
        subject(f"ultralytics:{own}")


def test_edit_spec_extends_an_ultralytics_yaml_and_the_cli_takes_it(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from blockstitch.cli import main

    spec = tmp_path / "edit.yaml"
    spec.write_text(EDIT)
    s = subject(spec)
    assert [e.path for e in s.report.edits] == ["model.2", "model.4", "model.6", "model.8"]
    assert main(["check", str(spec)]) == 0
    assert main(["profile", "ultralytics:yolov8n.yaml", "--input", "3,64,64"]) == 0
    assert main(["graph", "ultralytics:yolov8n.yaml", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "model_2_cbam" in out and "flowchart" in out
    base = bs.profile(subject("ultralytics:yolov8n.yaml").module(None), (3, 64, 64))
    assert f"{base.params:,}" in out


def test_stitch_takes_a_yolo_object() -> None:
    from ultralytics import YOLO

    yolo = YOLO("yolov8n.yaml")  # a shipped YAML: random weights, nothing downloaded
    new, report = bs.stitch(yolo, insert=[{"after": "model.[2468]", "block": {"kind": "cbam"}}],
                            input_shape=(3, 64, 64))
    assert type(new).__name__ == "DetectionModel" and report.name == "DetectionModel"
    assert "model_2_cbam" not in dict(yolo.model.named_children())  # the YOLO's network is left as it was
    assert subject(yolo).obj is yolo.model


def test_without_ultralytics_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from blockstitch import sources_ultralytics
    from blockstitch.cli import main

    monkeypatch.setitem(sys.modules, "ultralytics", None)  # import ultralytics → ImportError
    sources_ultralytics._shipped.cache_clear()
    try:
        with pytest.raises(SpecError, match=r"^ultralytics is not installed: `pip install ultralytics`"):
            subject("ultralytics:yolov8n.yaml")
        assert main(["profile", "ultralytics:yolov8n.yaml"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "ultralytics is not installed" in err
    finally:
        sources_ultralytics._shipped.cache_clear()
