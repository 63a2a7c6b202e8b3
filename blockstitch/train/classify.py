"""The built-in ``classify`` task: train on ``data/train``, score top-1/top-5 on ``data/val`` after every epoch.

Same seed, same numbers (CPU, bit for bit): each epoch seeds the global generators and the shuffling from
(seed, epoch), data load in-process by default, deterministic algorithms within the trial. ``last.pt`` after each
epoch lets a killed trial resume and end with the same weights and metrics as a run that was never stopped.

>>> import tempfile, torch
>>> from blockstitch.train import Recipe, make_shapes_dataset
>>> data = make_shapes_dataset(Path(tempfile.mkdtemp()), classes=2, train_per_class=4, val_per_class=2, size=16)
>>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 2))
>>> result = ClassifyTask().fit(model, Recipe(epochs=1, batch=4), data, seed=0, device="cpu",
...                             trial_dir=Path(tempfile.mkdtemp()), reporter=Reporter())
>>> sorted(result)
['best_epoch', 'best_top1', 'epochs', 'top1', 'top5', 'train_loss', 'val_loss']
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import SpecError, fmt_shape
from .checkpoint import LAST, load_checkpoint, save_checkpoint
from .head import check_logits
from .images import image_folders, make_loader
from .optim import make_optimizer, make_schedule
from .recipe import Recipe
from .reporter import Reporter
from .seeding import derive_seed, rng_state, seed_everything, set_rng_state, trial_scope
from .task import TASKS, TrainError

__all__ = ["ClassifyTask", "summarise"]


class ClassifyTask:
    """Image classification from two ImageFolder trees; metrics in percent, ranked by last-epoch top-1."""

    name: str = "classify"
    metrics: tuple[str, ...] = ("top1", "top5")
    primary: str = "top1"

    def fit(self, model: nn.Module, recipe: Recipe, data: Path, *, seed: int, device: str, trial_dir: Path,
            reporter: Reporter | None = None) -> dict[str, float]:
        """Train ``model`` in place and return the last epoch's ``top1``, ``top5``, ``val_loss`` and
        ``train_loss``, with ``best_top1``, ``best_epoch`` and ``epochs``; see the module docstring."""
        with trial_scope(recipe.threads, device):
            return _Trial(model, recipe, Path(data), seed, str(device), Path(trial_dir),
                          reporter or Reporter()).run()


def summarise(history: list[dict[str, float]]) -> dict[str, float]:
    """The result row from per-epoch metrics: the last epoch's, plus the best top-1 and its (1-based) epoch.

    >>> summarise([{"top1": 50.0}, {"top1": 75.0}, {"top1": 70.0}])
    {'top1': 70.0, 'best_top1': 75.0, 'best_epoch': 2, 'epochs': 3}
    """
    best = max(range(len(history)), key=lambda i: (history[i]["top1"], -i))
    return {**history[-1], "best_top1": history[best]["top1"], "best_epoch": best + 1, "epochs": len(history)}


def _digest(model: nn.Module) -> str:
    """Names, shapes and dtypes of the model's state: what a checkpoint must fit."""
    text = ";".join(f"{k}:{tuple(v.shape)}:{v.dtype}" for k, v in model.state_dict().items())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Trial:
    """One run of :meth:`ClassifyTask.fit` (state shared by its steps)."""

    def __init__(self, model: nn.Module, recipe: Recipe, data: Path, seed: int, device: str, trial_dir: Path,
                 reporter: Reporter) -> None:
        self.model, self.recipe, self.seed, self.device, self.reporter = model, recipe, seed, device, reporter
        self.train, self.val = image_folders(data, recipe.input, recipe.augment)
        self.checkpoint = trial_dir / LAST
        cuda = device.startswith("cuda")
        self.amp = recipe.amp and cuda
        self.amp_dtype = torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.loss = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        self.fingerprint = json.dumps({"task": "classify", "recipe": recipe.model_dump(mode="json"), "seed": seed,
                                       "classes": self.train.classes, "train": len(self.train),
                                       "val": len(self.val), "shape": list(self.train.shape)}, sort_keys=True)

    def run(self) -> dict[str, float]:
        model, recipe = self.model, self.recipe
        was_training = model.training
        model.to(self.device)
        self.fingerprint += _digest(model)
        steps = len(make_loader(self.train, recipe.batch, shuffle=True, generator=torch.Generator(), workers=0,
                                device="cpu"))
        optimizer = make_optimizer(model, recipe)
        schedule = make_schedule(optimizer, recipe, steps)
        history: list[dict[str, float]] = []
        if self.checkpoint.is_file():
            history = self._resume(optimizer, schedule)
        for epoch in range(len(history), recipe.epochs):
            seed_everything(derive_seed(self.seed, epoch, "epoch"))
            order = torch.Generator().manual_seed(derive_seed(self.seed, epoch, "order"))
            self.train.augment_seed = derive_seed(self.seed, epoch, "augment")
            train_loss = self._train_epoch(epoch, optimizer, schedule, order)
            history.append({**self._evaluate(), "train_loss": train_loss})
            save_checkpoint(self.checkpoint, {
                "epoch": epoch + 1, "history": history, "fingerprint": self.fingerprint,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "scaler": self.scaler.state_dict(), "best": max(h["top1"] for h in history), "rng": rng_state()})
            self.reporter.epoch(epoch + 1, recipe.epochs, dict(history[-1]))
        model.train(was_training)
        return summarise(history)

    def _resume(self, optimizer: torch.optim.Optimizer, schedule: Any) -> list[dict[str, float]]:
        state = load_checkpoint(self.checkpoint)  # on the CPU: load_state_dict moves each tensor where it belongs
        if state.get("fingerprint") != self.fingerprint:
            raise TrainError(f"{self.checkpoint} was written by another trial (recipe, seed, data or model differ)"
                             f"\n  hint:     delete it, or give this trial its own folder")
        self.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        done = int(state["epoch"])
        self.reporter.log(f"resumed from {self.checkpoint} after epoch {done} of {self.recipe.epochs}")
        return [dict(h) for h in state["history"]][:done]

    def _train_epoch(self, epoch: int, optimizer: torch.optim.Optimizer, schedule: Any,
                     order: torch.Generator) -> float:
        model, recipe = self.model, self.recipe
        model.train()
        loader = make_loader(self.train, recipe.batch, shuffle=True, generator=order, workers=recipe.workers,
                             device=self.device)
        total, count = torch.zeros((), dtype=torch.float64, device=self.device), 0
        for step, (images, labels) in enumerate(loader):
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            with torch.autocast("cuda", dtype=self.amp_dtype, enabled=self.amp):
                logits = self._first_forward(images) if step == 0 else model(images)
                if step == 0 or not isinstance(logits, torch.Tensor):  # before any weight has moved
                    check_logits(model, tuple(getattr(logits, "shape", ())), self.train.classes)
                loss = self.loss(logits.float(), labels)
            if not torch.isfinite(loss):
                raise TrainError(f"the loss is {loss.item()} at epoch {epoch + 1}, step {step + 1} "
                                 f"(lr {schedule.get_last_lr()[0]:.3g}): training stopped"
                                 f"\n  hint:     lower lr, add warm-up, or check the model for a division by zero")
            optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
            schedule.step()
            total += loss.detach().double() * len(labels)
            count += len(labels)
        return float(total.item() / max(1, count))

    def _first_forward(self, images: torch.Tensor) -> torch.Tensor:
        """The epoch's first forward: a model that cannot take the data's images says which input it got."""
        try:
            return self.model(images)  # type: ignore[no-any-return]
        except RuntimeError as err:
            if "out of memory" in str(err).lower():
                raise
            shape = fmt_shape(images.shape)
            raise SpecError(f"{type(self.model).__name__} cannot take the data's images ({shape}): "
                            f"{str(err).splitlines()[0]}", expected="a model for " + shape[shape.index("×") + 1:],
                            found=shape, hint="set the recipe's input: [C, H, W] to what the model takes "
                                              "(C = 1 reads greyscale)") from err

    @torch.no_grad()
    def _evaluate(self) -> dict[str, float]:
        model, classes = self.model, len(self.val.classes)
        model.eval()
        loader = make_loader(self.val, self.recipe.batch, shuffle=False, generator=None, workers=self.recipe.workers,
                             device=self.device)
        k = min(5, classes)
        top1 = topk = 0
        loss = torch.zeros((), dtype=torch.float64, device=self.device)
        for images, labels in loader:
            images, labels = images.to(self.device), labels.to(self.device)
            with torch.autocast("cuda", dtype=self.amp_dtype, enabled=self.amp):
                logits = model(images).float()
            check_logits(model, tuple(logits.shape), self.val.classes)
            loss += nn.functional.cross_entropy(logits, labels, reduction="sum").double()
            best = logits.topk(k, dim=1).indices
            hits = best == labels[:, None]
            top1 += int(hits[:, 0].sum())
            topk += int(hits.any(dim=1).sum())
        n = len(self.val)
        val_loss = float(loss.item() / n)
        if not math.isfinite(val_loss):
            raise TrainError(f"the validation loss is {val_loss}: the model gives non-finite logits")
        return {"top1": 100.0 * top1 / n, "top5": 100.0 * topk / n, "val_loss": val_loss}


TASKS["classify"] = ClassifyTask()
