"""A stitched network back in Ultralytics' hands: ``bs.to_ultralytics(stitched) -> YOLO``.

The object returned is an Ultralytics ``YOLO`` (a subclass of it): ``train``, ``val``, ``predict``, ``export``,
``info`` and ``save`` are Ultralytics' own. The one difference is the trainer its ``train`` picks: Ultralytics'
``DetectionTrainer``/``SegmentationTrainer`` with ``get_model`` returning the stitched network instead of
rebuilding it from the YAML (:mod:`blockstitch.yolo.trainer`), so EMA, the AMP check and ``best.pt``/``last.pt``
keep the stitched blocks. A saved checkpoint is a plain Ultralytics checkpoint: ``YOLO("best.pt")`` loads and
predicts in any process where blockstitch (and the module classes you stitched in) can be imported; to train it
again — or resume it — wrap it again, ``bs.to_ultralytics("last.pt").train(resume=True)``.

>>> import blockstitch as bs
>>> base = subject("ultralytics:yolov8n.yaml").module(None)     # blockstitch.subject.subject
>>> new, report = bs.stitch(base, insert=[{"after": "model.[2468]", "block": {"kind": "cbam"}}])
>>> yolo = bs.to_ultralytics(new)
>>> yolo.train(data="data.yaml", epochs=1, imgsz=64)     # Ultralytics' trainer, the stitched network
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn
from ultralytics import YOLO
from ultralytics.nn.tasks import guess_model_task
from ultralytics.utils import DEFAULT_CFG_DICT, callbacks

from ..errors import SpecError
from ..sources_ultralytics import unwrap_ultralytics
from .offline import stays_offline
from .trainer import StitchedDetectionTrainer, StitchedSegmentationTrainer

__all__ = ["StitchedYOLO", "to_ultralytics"]

_TRAINERS = {"detect": StitchedDetectionTrainer, "segment": StitchedSegmentationTrainer}


class StitchedYOLO(YOLO):
    """Ultralytics' ``YOLO`` whose trainer keeps the network it holds (see the module docstring).

    Built from a network (``nn.Module``), a ``YOLO`` object or a local ``.pt`` checkpoint (loaded by Ultralytics,
    in Python: your choice to run its pickle).
    """

    def __init__(self, model: nn.Module | YOLO | str | Path, task: str | None = None, verbose: bool = False) -> None:
        if isinstance(model, (str, Path)):
            if not str(model).lower().endswith(".pt") or not Path(model).is_file():
                raise SpecError(f"not a local Ultralytics checkpoint: {model}", expected="a .pt file that exists",
                                hint="nothing is downloaded; for a YAML use bs.subject('ultralytics:yolov8n.yaml')")
            super().__init__(str(model), task=task, verbose=verbose)
            return
        network = unwrap_ultralytics(model)
        if not isinstance(network, nn.Module) or not hasattr(network, "yaml") or not hasattr(network, "model"):
            raise SpecError(f"to_ultralytics() takes an Ultralytics network (DetectionModel, SegmentationModel, a "
                            f"YOLO), found {type(network).__name__}",
                            hint="stitch into subject('ultralytics:yolov8n.yaml').module(None) (blockstitch.subject) or a "
                                 "YOLO's .model")
        net: Any = network
        nn.Module.__init__(self)  # what Model.__init__ sets, for a network already in hand (nothing is rebuilt)
        self.callbacks = callbacks.get_default_callbacks()
        self.predictor = self.trainer = self.metrics = None
        self.cfg = self.ckpt_path = None
        self.task = task or getattr(net, "task", None) or guess_model_task(net)
        self.model = net
        self.ckpt = {"model": net}  # train() hands a loaded model to the trainer's get_model (ours keeps it)
        self.model_name = net.yaml.get("yaml_file", type(net).__name__)
        self.overrides = {"model": self.model_name, "task": self.task}
        if not hasattr(net, "args"):  # what YOLO("x.yaml") attaches, so export and predict find their defaults
            net.args = {**DEFAULT_CFG_DICT, **self.overrides}
        net.task = self.task
        del self.training  # Model's rule: `training` reads through to the network

    def val(self, validator: Any = None, **kwargs: Any) -> Any:
        """Ultralytics' ``val``, with fonts looked up locally only (:mod:`blockstitch.yolo.offline`)."""
        with stays_offline():
            return super().val(validator=validator, **kwargs)

    @property
    def task_map(self) -> dict[str, dict[str, Any]]:
        """Ultralytics' map, with the stitched trainers for ``detect`` and ``segment``."""
        tasks = {task: dict(entry) for task, entry in super().task_map.items()}
        for task, trainer in _TRAINERS.items():
            if task in tasks:
                tasks[task]["trainer"] = trainer
        return tasks


def to_ultralytics(model: nn.Module | YOLO | str | Path, task: str | None = None) -> StitchedYOLO:
    """An Ultralytics ``YOLO`` for a (stitched) Ultralytics network, whose ``train`` keeps the network.

    ``model``: a ``DetectionModel``/``SegmentationModel`` (what ``bs.stitch`` returns for one), a ``YOLO``, or a
    local ``.pt`` checkpoint (to train it further or resume: ``to_ultralytics("last.pt").train(resume=True)``).
    The network is used as it is (not copied); training works on a copy and puts the trained one in its place,
    as Ultralytics does.

    >>> yolo = to_ultralytics(stitched)
    >>> yolo.train(data="data.yaml", epochs=1, imgsz=64, plots=False)
    >>> YOLO(yolo.trainer.best).predict("image.jpg")    # any process with blockstitch installed
    """
    if task is not None and task not in _TRAINERS:
        raise SpecError(f"to_ultralytics() trains detect and segment networks, not '{task}'",
                        expected=", ".join(_TRAINERS))
    return StitchedYOLO(model, task=task)
