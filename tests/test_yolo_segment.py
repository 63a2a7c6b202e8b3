"""Segmentation the same way: a stitched yolov8n-seg trains with Ultralytics' SegmentationTrainer (the stitched
network kept, its head resized to the data's classes) on rectangles written as polygons, and validates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("ultralytics")

import blockstitch as bs
from blockstitch.subject import subject


def test_a_stitched_segmentation_model_trains_and_validates(tmp_path: Path) -> None:
    from blockstitch.yolo import StitchedSegmentationTrainer, make_boxes_dataset

    torch.set_num_threads(1)
    data = make_boxes_dataset(tmp_path / "d", classes=2, train=8, val=4, size=64, polygons=True)
    assert len((tmp_path / "d" / "labels" / "train").iterdir().__next__().read_text().split("\n")[0].split()) == 9
    base = subject("ultralytics:yolov8n-seg.yaml").module(None)
    new, _ = bs.stitch(base, insert=[{"after": "model.[468]", "block": {"kind": "cbam"}}], input_shape=(3, 64, 64))
    yolo = bs.to_ultralytics(new)
    metrics = yolo.train(data=str(data), epochs=1, imgsz=64, batch=4, workers=0, device="cpu", plots=False,
                         amp=False, project=str(tmp_path / "runs"), name="seg", verbose=False)
    assert yolo.task == "segment" and isinstance(yolo.trainer, StitchedSegmentationTrainer)
    assert {"metrics/mAP50(M)", "metrics/mAP50-95(M)"} <= set(metrics.results_dict)
    for model in (yolo.trainer.ema.ema, yolo.model):  # the EMA and best.pt reloaded
        assert [n for n, _ in model.named_children()] == ["model", "model_4_cbam", "model_6_cbam", "model_8_cbam"]
        assert type(model).__name__ == "SegmentationModel" and model.model[-1].nc == 2
