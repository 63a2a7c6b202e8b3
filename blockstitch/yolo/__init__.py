"""YOLO, first-class: a stitched Ultralytics network trains, validates, saves and reloads with Ultralytics' API.

- :func:`to_ultralytics` — a stitched ``DetectionModel``/``SegmentationModel`` as an Ultralytics ``YOLO`` whose
  trainer keeps the stitched blocks (:mod:`.bridge`, :mod:`.trainer`);
- :func:`make_boxes_dataset` — a small, learnable YOLO-format dataset drawn from a seed (:mod:`.dataset`);
- :mod:`.detect_task` — the ``detect`` task of ablation files (mAP50 and mAP50-95 from Ultralytics' validator).

``ultralytics:yolov8n.yaml`` / ``ultralytics:best.pt`` sources live with the resolver
(:mod:`blockstitch.sources_ultralytics`). Importing this package imports ultralytics; without it installed, a
one-line error.

Layering: above the tools, beside ablate (its detect task is a train task), below the API.
"""

from __future__ import annotations

from ..sources_ultralytics import require_ultralytics

require_ultralytics()

# after the one-line check above: without Ultralytics, importing these would fail with a traceback
from .bridge import StitchedYOLO, to_ultralytics  # noqa: E402
from .dataset import make_boxes_dataset  # noqa: E402
from .trainer import StitchedDetectionTrainer, StitchedSegmentationTrainer, match_classes  # noqa: E402

__all__ = ["StitchedDetectionTrainer", "StitchedSegmentationTrainer", "StitchedYOLO", "make_boxes_dataset",
           "match_classes", "to_ultralytics"]
