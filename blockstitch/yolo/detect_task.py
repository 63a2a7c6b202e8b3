"""The ``detect`` task of ablation files: each variant trains with Ultralytics' own trainer, scored by its validator.

``data`` is an Ultralytics data YAML (or a folder holding ``data.yaml``). The recipe maps onto Ultralytics'
arguments (``epochs``, ``batch``, ``lr`` → ``lr0``, ``optimizer`` → ``AdamW``/``SGD``, ``weight_decay``,
``momentum``, ``schedule: cosine`` → ``cos_lr``, ``warmup_epochs``, ``imgsz`` (else ``input``'s height, else 640),
``workers``, ``amp`` on CUDA only, the seed with ``deterministic=True``, no plots); ``recipe.extra`` is passed
to Ultralytics untouched (``mosaic: 0``, ``close_mosaic: 0`` …). ``label_smoothing`` has no Ultralytics
equivalent and must stay 0.

Metrics are Ultralytics' final validation (of ``best.pt``, the epoch with the highest mAP50-95 — Ultralytics'
fitness for detection), in percent: ``mAP50``, ``mAP50-95`` (primary), ``precision``, ``recall``; plus ``epochs`` and
``best_epoch``. Checkpoints are Ultralytics' own, in ``trial_dir/yolo/weights``; a trial that finds a
resumable ``last.pt`` there continues it (Ultralytics' resume), one that finds a finished run returns its numbers.

>>> from blockstitch.train import Recipe, get_task
>>> import blockstitch.yolo.detect_task                # registers "detect" (the ablate driver does this)
>>> get_task("detect").metrics
('mAP50', 'mAP50-95', 'precision', 'recall')
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import SpecError
from ..train.recipe import Recipe
from ..train.reporter import Reporter
from ..train.seeding import trial_scope
from ..train.task import TASKS, TrainError
from .bridge import to_ultralytics
from .trainer import match_classes

__all__ = ["DetectTask", "ultralytics_args"]

_COLUMNS = {"mAP50": "metrics/mAP50(B)", "mAP50-95": "metrics/mAP50-95(B)", "precision": "metrics/precision(B)",
            "recall": "metrics/recall(B)"}
_RUN = "yolo"


def _data_yaml(data: Path) -> Path:
    path = Path(data)
    if path.is_dir() and (path / "data.yaml").is_file():
        path = path / "data.yaml"
    if not path.is_file() or path.suffix.lower() not in (".yaml", ".yml"):
        raise SpecError(f"task detect needs an Ultralytics data YAML, found {data}",
                        expected="data: path/to/data.yaml (train:, val:, names:)",
                        hint="blockstitch.yolo.make_boxes_dataset(root) writes a small one")
    return path


def ultralytics_args(recipe: Recipe, data: Path, seed: int, device: str, trial_dir: Path) -> dict[str, Any]:
    """The keyword arguments of ``YOLO.train`` for this recipe (see the module docstring).

    >>> ultralytics_args(Recipe(epochs=2, lr=0.01, optimizer="sgd"), Path("d.yaml"), 0, "cpu", Path("t"))["lr0"]
    0.01
    """
    if recipe.label_smoothing:
        raise SpecError("recipe.label_smoothing has no Ultralytics equivalent for task detect",
                        found=str(recipe.label_smoothing), expected="0")
    imgsz = recipe.imgsz or (recipe.input[1] if recipe.input else 640)
    args: dict[str, Any] = {
        "data": str(_data_yaml(data)), "epochs": recipe.epochs, "batch": recipe.batch, "imgsz": imgsz,
        "lr0": recipe.lr, "optimizer": {"adamw": "AdamW", "sgd": "SGD"}[recipe.optimizer],
        "weight_decay": recipe.weight_decay, "momentum": recipe.momentum, "cos_lr": recipe.schedule == "cosine",
        "warmup_epochs": recipe.warmup_epochs, "workers": recipe.workers, "seed": seed, "deterministic": True,
        "device": "cpu" if device == "cpu" else device.removeprefix("cuda:"),
        "amp": bool(recipe.amp and str(device).startswith("cuda")), "plots": False, "verbose": False,
        "project": str(Path(trial_dir).resolve()), "name": _RUN, "exist_ok": True, "val": True,
    }
    if recipe.schedule == "constant":
        args["lrf"] = 1.0  # Ultralytics decays to lr0·lrf: constant means lrf = 1
    return {**args, **recipe.extra}


def _history(run: Path) -> list[dict[str, float]]:
    """Ultralytics' per-epoch ``results.csv`` as numbers."""
    path = run / "results.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [{k.strip(): float(v) for k, v in row.items() if k and v not in (None, "")} for row in csv.DictReader(f)]


class _EpochReporter:
    """Ultralytics' ``on_fit_epoch_end`` callback → ``Reporter.epoch`` (metrics in percent, losses as they are)."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def __call__(self, trainer: Any) -> None:
        if trainer.epoch >= trainer.epochs:  # Ultralytics calls it once more after its final validation of best.pt
            return
        metrics = {ours: 100 * float(trainer.metrics.get(theirs, 0.0)) for ours, theirs in _COLUMNS.items()}
        if trainer.tloss is not None:  # Ultralytics' own names: train/box_loss, train/cls_loss, train/dfl_loss
            metrics.update({k: float(v) for k, v in trainer.label_loss_items(trainer.tloss, prefix="train").items()})
        self.reporter.epoch(trainer.epoch + 1, trainer.epochs, metrics)


class DetectTask:
    """Object detection with Ultralytics' trainer and validator; see the module docstring."""

    name: str = "detect"
    metrics: tuple[str, ...] = ("mAP50", "mAP50-95", "precision", "recall")
    primary: str = "mAP50-95"

    def fit(self, model: nn.Module, recipe: Recipe, data: Path, *, seed: int, device: str, trial_dir: Path,
            reporter: Reporter | None = None) -> dict[str, float]:
        """Train ``model`` (an Ultralytics network, stitched or not) and leave the trained weights in it (its head
        resized to the data's classes if needed); return the metrics (see the module docstring)."""
        reporter = reporter or Reporter()
        args = ultralytics_args(recipe, data, seed, device, trial_dir)
        run = Path(args["project"]) / _RUN
        last = run / "weights" / "last.pt"
        with trial_scope(recipe.threads, device):
            if last.is_file():
                saved = torch.load(last, map_location="cpu", weights_only=False)  # our own trial's checkpoint
                if saved.get("optimizer") is None:  # Ultralytics strips it when a run finishes
                    reporter.log(f"{run}: finished earlier, its numbers are reused")
                    return self._finish(model, run, saved, [])
                reporter.log(f"resuming from {last} (epoch {saved['epoch'] + 1} done)")
                yolo = to_ultralytics(str(last))
                yolo.add_callback("on_fit_epoch_end", _EpochReporter(reporter))
                yolo.train(resume=True, **{k: args[k] for k in ("device", "workers", "plots")})
            else:
                yolo = to_ultralytics(model)
                yolo.add_callback("on_fit_epoch_end", _EpochReporter(reporter))
                yolo.train(**args)
        trainer: Any = yolo.trainer
        final = {ours: 100 * float(trainer.metrics.get(theirs, 0.0)) for ours, theirs in _COLUMNS.items()}
        best = torch.load(trainer.best if trainer.best.is_file() else trainer.last, map_location="cpu",
                          weights_only=False)
        return self._finish(model, run, best, [final])

    @staticmethod
    def _finish(model: nn.Module, run: Path, saved: dict[str, Any], final: list[dict[str, float]]) -> dict[str, float]:
        trained: Any = (saved.get("ema") or saved.get("model")).float()  # type: ignore[union-attr]
        match_classes(model, int(trained.nc))
        model.load_state_dict(trained.state_dict())  # the task trains the model it was given, in place
        history = _history(run)
        if not history:
            raise TrainError(f"{run}: Ultralytics wrote no results.csv; nothing to report")
        if final:
            metrics = final[0]
        else:
            metrics = dict(saved.get("train_metrics") or {})
            metrics = {ours: 100 * float(metrics.get(theirs, 0.0)) for ours, theirs in _COLUMNS.items()}
        fitness = [h.get(_COLUMNS["mAP50-95"], 0.0) for h in history]  # Ultralytics' DetMetrics.fitness
        best_epoch = max(range(len(fitness)), key=lambda i: (fitness[i], -i)) + 1
        return {**metrics, "epochs": float(len(history)), "best_epoch": float(best_epoch)}


TASKS["detect"] = DetectTask()
