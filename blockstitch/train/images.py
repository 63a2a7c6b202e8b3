"""Image folders for classification: ``data/train/<class>/*`` and ``data/val/<class>/*``, checked, cached in
memory once decoded, with the standard augmentation and ImageNet normalisation.

Small images (≤ 64 px, CIFAR-style) are augmented by a reflect-padded random crop and a horizontal flip; larger
ones by a random resized crop and a flip, and validated on a centre crop of an 8/7 resize. Every random draw is
from torch's global generator, which the trainer seeds per epoch; with workers each worker is seeded from the
loader's own generator.

>>> import tempfile
>>> from blockstitch.train.datasets import make_shapes_dataset
>>> root = make_shapes_dataset(Path(tempfile.mkdtemp()), classes=2, train_per_class=2, val_per_class=1, size=16)
>>> train, val = image_folders(root, None)
>>> train.classes, train.shape, len(train), len(val)
(['circle', 'square'], (3, 16, 16), 4, 2)
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import SpecError

__all__ = ["Images", "image_folders", "make_loader", "MEAN", "STD", "SMALL"]

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SMALL = 64
"""Images this size or smaller get the small-image augmentation (padded crop, flip)."""


class Images(Dataset):
    """One split: ``(image, label)`` pairs, decoded once (uint8 tensors kept when loading in-process)."""

    def __init__(self, folder: Path, shape: tuple[int, int, int] | None, train: bool, augment: bool) -> None:
        from torchvision.datasets import ImageFolder

        found = ImageFolder(str(folder), allow_empty=False)
        self.folder = folder
        self.classes: list[str] = list(found.classes)
        self.samples: list[tuple[str, int]] = list(found.samples)
        self._cache: dict[int, torch.Tensor] = {}
        first = self._decode(0, 3)
        self.shape = tuple(shape) if shape is not None else (3, int(first.shape[1]), int(first.shape[2]))
        self.transform = _transform(self.shape, train and augment, train)

    def _decode(self, index: int, channels: int) -> torch.Tensor:
        from PIL import Image
        from torchvision.transforms.v2.functional import pil_to_tensor

        with Image.open(self.samples[index][0]) as image:
            return pil_to_tensor(image.convert("L" if channels == 1 else "RGB"))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self._cache.get(index)
        if image is None:
            image = self._decode(index, self.shape[0])
            if torch.utils.data.get_worker_info() is None:  # a worker's copy would be thrown away each epoch
                self._cache[index] = image
        return self.transform(image), self.samples[index][1]


def _transform(shape: tuple[int, ...], augment: bool, train: bool) -> torch.nn.Module:
    from torchvision.transforms import v2

    c, h, w = shape
    mean, std = (MEAN, STD) if c == 3 else ((sum(MEAN) / 3,), (sum(STD) / 3,))
    small = max(h, w) <= SMALL
    if augment and small:
        steps = [v2.Resize((h, w), antialias=True), v2.RandomCrop((h, w), padding=max(1, h // 8),
                                                                   padding_mode="reflect"),
                 v2.RandomHorizontalFlip()]
    elif augment:
        steps = [v2.RandomResizedCrop((h, w), scale=(0.25, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    elif small or train:
        steps = [v2.Resize((h, w), antialias=True)]
    else:
        steps = [v2.Resize((h * 8 // 7, w * 8 // 7), antialias=True), v2.CenterCrop((h, w))]
    return v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def image_folders(data: Path, input_shape: list[int] | tuple[int, ...] | None,
                  augment: bool = True) -> tuple[Images, Images]:
    """The train and val splits under ``data``, with the same classes; located errors when they are not there.

    >>> image_folders(Path("/nonexistent"), None)
    Traceback (most recent call last):
    ...
    blockstitch.errors.SpecError: /nonexistent: no 'train' folder of images
    ...
    """
    data = Path(data)
    for split in ("train", "val"):
        if not (data / split).is_dir():
            raise SpecError(f"no '{split}' folder of images", file=str(data), expected=f"{data}/{split}/<class>/*.png",
                            hint="a classify dataset is two ImageFolder trees, train/ and val/; "
                                 "blockstitch.train.make_shapes_dataset(root) writes one")
    splits = []
    for split in ("train", "val"):
        try:
            splits.append(Images(data / split, tuple(input_shape) if input_shape else None, split == "train",
                                 augment))
        except (FileNotFoundError, OSError) as err:
            raise SpecError(f"cannot read the '{split}' images: {err}", file=str(data / split),
                            expected="class folders holding image files") from None
    train, val = splits
    if train.classes != val.classes:
        raise SpecError("train and val have different classes", file=str(data),
                        expected=", ".join(train.classes), found=", ".join(val.classes))
    val.shape = train.shape
    val.transform = _transform(train.shape, False, False)
    return train, val


def _seed_worker(worker_id: int) -> None:
    """Each worker's numpy and python generators from its torch seed (which the loader's generator set)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Images, batch: int, *, shuffle: bool, generator: torch.Generator | None, workers: int,
                device: str) -> DataLoader:
    """A loader whose order and worker seeds come only from ``generator``; the last training batch is dropped
    when the set is larger than a batch (a batch of one breaks batch norm).

    >>> make_loader.__name__
    'make_loader'
    """
    return DataLoader(dataset, batch_size=batch, shuffle=shuffle, generator=generator, num_workers=workers,
                      worker_init_fn=_seed_worker if workers else None, drop_last=shuffle and len(dataset) > batch,
                      pin_memory=str(device).startswith("cuda"))
