"""A stitched YOLO through Ultralytics' own API: train, val, save, reload in a fresh process, predict, resume.

Everything runs on the CPU on a dataset the test draws (coloured rectangles on noise, 3 classes, 16 train and 8 val
images at 64×64), with sockets unusable: Ultralytics' font, asset and AMP-weight downloads must not be needed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("ultralytics")
pytest.importorskip("fightingcv_attention")

import blockstitch as bs
from blockstitch.subject import subject

ROOT = Path(__file__).resolve().parents[1]
TRAIN = {"epochs": 1, "imgsz": 64, "batch": 4, "workers": 0, "device": "cpu", "plots": False, "amp": False,
         "seed": 0, "deterministic": True, "verbose": False}
NO_NETWORK = """
import socket
ATTEMPTS = []
def _refuse(*args, **kwargs):
    ATTEMPTS.append(repr(args[:2]) + "".join(__import__("traceback").format_stack(limit=12)))
    raise OSError("network disabled by the test")
socket.getaddrinfo = _refuse
socket.create_connection = _refuse
socket.socket.connect = _refuse
"""
ATTEMPTS: list[str] = []


def _refuse(*args: object, **kwargs: object) -> None:
    ATTEMPTS.append(repr(args[:2]) + "".join(__import__("traceback").format_stack(limit=12)))
    raise OSError("network disabled by the test")


@pytest.fixture(scope="module", autouse=True)
def offline():  # type: ignore[no-untyped-def]
    """No socket can connect while these tests run, and none may try (Ultralytics' font check would: blockstitch
    keeps it local); Ultralytics' settings live in a temporary directory, where nothing may be downloaded."""
    from ultralytics.utils import USER_CONFIG_DIR

    assert "blockstitch-tests" in str(USER_CONFIG_DIR), "conftest points YOLO_CONFIG_DIR at a temporary directory"
    patch = pytest.MonkeyPatch()
    for name in ("getaddrinfo", "create_connection"):
        patch.setattr(socket, name, _refuse)
    patch.setattr(socket.socket, "connect", _refuse)
    torch.set_num_threads(1)
    before = {p.name for p in USER_CONFIG_DIR.iterdir()}
    yield
    patch.undo()
    after = {p.name for p in USER_CONFIG_DIR.iterdir()}
    assert not {n for n in after - before if n.endswith((".ttf", ".pt", ".zip"))}, "something was downloaded"
    assert ATTEMPTS == [], f"network attempts: {ATTEMPTS}"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from blockstitch.yolo import make_boxes_dataset

    return make_boxes_dataset(tmp_path_factory.mktemp("boxes"), classes=3, train=16, val=8, size=64)


def _stitched():  # type: ignore[no-untyped-def]
    """yolov8n (80 classes, random weights) with CBAM after four backbone stages and a fightingcv-attention module
    (a plain class, as copied from a paper's repository) after the SPPF."""
    from fightingcv_attention.attention.SEAttention import SEAttention

    torch.manual_seed(0)
    base = subject("ultralytics:yolov8n.yaml").module(None)
    return bs.stitch(base, insert=[{"after": "model.[2468]", "block": {"kind": "cbam"}},
                                   {"after": "model.9", "block": SEAttention, "args": {"reduction": 8}}],
                     input_shape=(3, 64, 64))


STITCHED = ("model_2_cbam", "model_4_cbam", "model_6_cbam", "model_8_cbam", "model_9_SEAttention")


def _blocks(model: torch.nn.Module) -> list[str]:
    return [name for name, _ in model.named_children() if name in STITCHED]


@pytest.fixture(scope="module")
def trained(data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    new, report = _stitched()
    yolo = bs.to_ultralytics(new)
    start = {k: v.clone() for k, v in new.state_dict().items() if k.startswith("model_")}
    from blockstitch.yolo import offline

    checked: list[list[str]] = []
    original = offline.amp_check

    def spy(model: torch.nn.Module) -> bool:  # the AMP check Ultralytics' trainer calls (amp=True below)
        checked.append(_blocks(model))
        return original(model)

    patch = pytest.MonkeyPatch()
    patch.setattr(offline, "amp_check", spy)
    try:
        metrics = yolo.train(data=str(data), project=str(tmp_path_factory.mktemp("runs")), name="stitched",
                             **{**TRAIN, "amp": True})  # on the CPU the check says no: AMP stays off
    finally:
        patch.undo()
    assert checked == [list(STITCHED)] and yolo.trainer.amp is False  # checked on the stitched network
    return yolo, metrics, start, report


def test_training_keeps_the_stitched_blocks(trained) -> None:  # type: ignore[no-untyped-def]
    yolo, metrics, start, report = trained
    trainer = yolo.trainer
    for model in (trainer.model, trainer.ema.ema, yolo.model):  # trained network, its EMA, best.pt reloaded
        assert _blocks(model) == list(STITCHED)
    assert sum(p.numel() for p in yolo.model.parameters()) < report.params_after  # the head now has 3 classes
    assert yolo.model.nc == 3 and yolo.model.model[-1].nc == 3 and yolo.model.names == {0: "red", 1: "green",
                                                                                       2: "blue"}
    moved = [k for k, v in yolo.model.state_dict().items() if k in start and not torch.equal(v.float(), start[k])]
    assert any(k.startswith("model_9_SEAttention") for k in moved) and any("cbam" in k for k in moved)
    assert {"metrics/mAP50(B)", "metrics/mAP50-95(B)"} <= set(metrics.results_dict)
    assert trainer.best.exists() and trainer.last.exists()


def test_val_gives_the_same_numbers_as_a_reloaded_checkpoint(trained, data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    yolo = trained[0]
    args = {"data": str(data), "imgsz": 64, "batch": 4, "device": "cpu", "plots": False, "verbose": False,
            "project": str(tmp_path), "name": "val"}
    ours = yolo.val(**args)  # the network in memory after training
    again = bs.to_ultralytics(str(yolo.trainer.best)).val(**args)  # the checkpoint, loaded from the file
    assert ours.box.map50 == again.box.map50 and ours.box.map == again.box.map
    assert 0.0 <= ours.box.map <= ours.box.map50 <= 1.0


def test_best_pt_reloads_and_predicts_in_a_fresh_process(trained, data: Path) -> None:  # type: ignore[no-untyped-def]
    from ultralytics import YOLO

    best = trained[0].trainer.best
    image = next((data.parent / "images" / "val").iterdir())
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    torch.save(x, best.parent / "x.pt")
    script = NO_NETWORK + f"""
import json, torch
from ultralytics import YOLO
yolo = YOLO({str(best)!r})
children = [name for name, _ in yolo.model.named_children()]
boxes = yolo.predict({str(image)!r}, imgsz=64, device="cpu", verbose=False)[0].boxes
with torch.no_grad():
    out = yolo.model.eval()(torch.load({str(best.parent / "x.pt")!r}))[0]
print(json.dumps({{"children": children, "boxes": len(boxes), "out": out.sum().item(), "attempts": ATTEMPTS}}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "YOLO_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert [c for c in found["children"] if c in STITCHED] == list(STITCHED)
    here = YOLO(str(best)).model.eval()
    with torch.no_grad():
        assert found["out"] == pytest.approx(here(x)[0].sum().item(), rel=1e-5)
    assert found["attempts"] == []


def test_resume_from_last_pt(data: Path, tmp_path: Path) -> None:
    new, _ = _stitched()
    yolo = bs.to_ultralytics(new)

    class Interrupted(Exception):
        pass

    def stop(trainer) -> None:  # type: ignore[no-untyped-def]
        raise Interrupted  # after epoch 1 of 2 is validated and saved: as if the process died

    yolo.add_callback("on_fit_epoch_end", stop)
    with pytest.raises(Interrupted):
        yolo.train(data=str(data), project=str(tmp_path), name="r", **{**TRAIN, "epochs": 2})
    last = tmp_path / "r" / "weights" / "last.pt"
    saved = torch.load(last, weights_only=False)
    assert saved["epoch"] == 0 and _blocks(saved["ema"]) == list(STITCHED)
    again = bs.to_ultralytics(str(last))
    again.train(resume=True)
    assert again.trainer.start_epoch == 1 and again.trainer.epoch == 1
    assert _blocks(again.trainer.ema.ema) == list(STITCHED) and _blocks(again.model) == list(STITCHED)
    moved = again.model.state_dict()["model_9_SEAttention.fc.0.weight"]
    assert not torch.equal(moved, saved["ema"].state_dict()["model_9_SEAttention.fc.0.weight"].float())


def test_gflops_ultralytics_info_against_blockstitch_profile() -> None:
    """``YOLO.info()`` counts with thop (at a stride-sized input, scaled exactly to 640) and counts each batch-norm
    as operations of its own; blockstitch counts aten ops at 640, where a batch-norm in eval mode is what
    inference pays after Ultralytics fuses it into the conv. So info() is higher by the batch-norms, and after
    ``fuse()`` the two agree to 0.01 % (thop and aten differ only on CBAM's pooling and sigmoid)."""
    from copy import deepcopy

    from ultralytics.utils.torch_utils import get_flops

    new, _ = _stitched()
    yolo = bs.to_ultralytics(new)
    info = yolo.info(verbose=True)[-1]  # (layers, params, gradients, GFLOPs)
    ours = 2 * bs.profile(new, (3, 640, 640)).macs / 1e9  # FLOPs = 2 × MACs
    fused = get_flops(deepcopy(new).fuse(verbose=False), 640)
    assert info > ours and (info - ours) / ours < 0.02, (info, ours)  # yolov8n: 8.86 vs 8.75
    assert abs(fused - ours) / ours < 1e-4, (fused, ours)


def test_a_checkpoint_named_as_a_source_loads_only_known_classes(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``ultralytics:best.pt`` unpickles with weights_only=True: blockstitch's blocks load, a paper's class
    pickled along (fightingcv's SEAttention) is refused by name — a file cannot run code."""
    from blockstitch.errors import SpecError

    best = trained[0].trainer.best
    with pytest.raises(SpecError, match="outside the allow-list: .*fightingcv_attention"):
        subject(f"ultralytics:{best}").module(None)
    base = subject("ultralytics:yolov8n.yaml").module(None)
    new, _ = bs.stitch(base, insert=[{"after": "model.[2468]", "block": {"kind": "cbam"}}], input_shape=(3, 64, 64))
    bs.to_ultralytics(new).save(tmp_path / "cbam.pt")  # Ultralytics' own save: the network in half precision
    spec = tmp_path / "edit.yaml"
    spec.write_text("name: more\nextends: ultralytics:cbam.pt\ninput: [3, 64, 64]\n"
                    "insert:\n  - after: model.9\n    block: {kind: se}\n")  # relative to the spec file
    loaded = subject(f"ultralytics:{tmp_path / 'cbam.pt'}").module(None)
    expected = {k: v.half().float() for k, v in new.state_dict().items()}
    assert loaded.state_dict().keys() == expected.keys()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in expected.items())
    edited = subject(spec)
    assert [e.path for e in edited.report.edits] == ["model.9"]
    assert "model_2_cbam" in dict(edited.module("meta").named_children())


def test_export_to_onnx_carries_the_stitched_blocks(trained) -> None:  # type: ignore[no-untyped-def]
    """Ultralytics' own ``export`` of the reloaded ``best.pt``: the stitched blocks are in the ONNX graph and
    onnxruntime computes what the PyTorch network computes."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from ultralytics import YOLO

    yolo = YOLO(str(trained[0].trainer.best))
    path = Path(yolo.export(format="onnx", imgsz=64, device="cpu"))
    nodes = {n.name.split("/")[1] for n in onnx.load(str(path)).graph.node if n.name.count("/") > 1}
    assert set(STITCHED) <= nodes
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = YOLO(str(trained[0].trainer.best)).model.eval()(x)[0]
    (got,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x.numpy()})
    assert torch.allclose(torch.from_numpy(got), expected, atol=1e-3, rtol=1e-3)
