"""A stitched YOLO on CUDA with amp=True: Ultralytics' AMP check runs on the stitched network (blockstitch's
replacement; Ultralytics' own would download yolo26n.pt) and training stays offline. Skipped without CUDA."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

pytest.importorskip("ultralytics")

import blockstitch as bs
from blockstitch.subject import subject

pytestmark = pytest.mark.gpu


def test_amp_check_and_training_on_cuda_keep_the_blocks_and_stay_offline(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from blockstitch.yolo import make_boxes_dataset, offline

    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args[:2])
        raise OSError("network disabled by the test")

    for name in ("getaddrinfo", "create_connection"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    base = subject("ultralytics:yolov8n.yaml").module(None)
    new, _ = bs.stitch(base, insert=[{"after": "model.[468]", "block": {"kind": "cbam"}}], input_shape=(3, 64, 64))
    assert offline.amp_check(new.cuda()) is True  # float32 and autocast agree on the stitched network
    data = make_boxes_dataset(tmp_path / "d", classes=2, train=8, val=4, size=64)
    yolo = bs.to_ultralytics(new.cpu())
    yolo.train(data=str(data), epochs=1, imgsz=64, batch=4, workers=0, device=0, plots=False, amp=True,
               project=str(tmp_path / "runs"), name="gpu", verbose=False)
    assert yolo.trainer.amp is True and "model_4_cbam" in dict(yolo.model.named_children())
    assert attempts == []
