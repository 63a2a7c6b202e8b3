"""Image folders for classification: ``data/train/<class>/*`` and ``data/val/<class>/*``, checked (small ones
decoded once and kept in memory), with the standard augmentation and ImageNet normalisation.

Small images (≤ 64 px, CIFAR-style) are resized once to the input size and augmented by a reflect-padded random
crop (an eighth of the side) and a horizontal flip; larger ones by a random resized crop and a flip, and
validated on a centre crop of an 8/7 resize. Each sample's augmentation comes from its own generator seeded by
(epoch seed, index), so images loaded in a worker are the same as images loaded in-process, and the trainer's
own generator (dropout) is never touched by loading.

>>> import tempfile
>>> from blockstitch.train.datasets import make_shapes_dataset
>>> root = make_shapes_dataset(Path(tempfile.mkdtemp()), classes=2, train_per_class=2, val_per_class=1, size=16)
>>> train, val = image_folders(root, None)
>>> train.classes, train.shape, len(train), len(val), tuple(train[0][0].shape)
(['circle', 'square'], (3, 16, 16), 4, 2, (3, 16, 16))
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import SpecError

__all__ = ["Images", "image_folders", "make_loader", "MEAN", "STD", "SMALL", "CACHE_BYTES"]

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SMALL = 64
"""Images this size or smaller get the small-image augmentation (padded crop, flip) and are kept in memory."""
CACHE_BYTES = 1 << 30
"""At most this much of one split's decoded small images is kept in memory (the rest is read each epoch)."""


class Images(Dataset):
    """One split: ``(image, label)`` pairs; ``augment`` is the training augmentation, drawn per sample from
    ``augment_seed`` (which the trainer sets each epoch) and the sample's index."""

    def __init__(self, folder: Path, shape: tuple[int, ...] | None, augment: bool) -> None:
        from torchvision.datasets import ImageFolder

        found = ImageFolder(str(folder), allow_empty=False)
        self.classes: list[str] = list(found.classes)
        self.samples: list[tuple[str, int]] = list(found.samples)
        self._cache: dict[int, torch.Tensor] = {}
        self._cached = 0
        first = self._decode(0, 3)
        self.shape: tuple[int, ...] = tuple(shape) if shape else (3, int(first.shape[1]), int(first.shape[2]))
        self.augment = augment
        self.augment_seed = 0
        self.set_shape(self.shape)

    def set_shape(self, shape: tuple[int, ...]) -> None:
        """Use input ``(C, H, W)`` (val takes train's)."""
        from torchvision.transforms import v2

        self.shape, self._cache, self._cached = tuple(shape), {}, 0
        c, h, w = self.shape
        mean, std = (MEAN, STD) if c == 3 else ((sum(MEAN) / 3,), (sum(STD) / 3,))
        self._mean = torch.tensor(mean).view(-1, 1, 1)
        self._std = torch.tensor(std).view(-1, 1, 1)
        self.small = max(h, w) <= SMALL
        if self.small:
            self.transform = None  # resized once when decoded; crop and flip below, by hand (10× faster than v2)
        elif self.augment:
            self.transform = v2.Compose([v2.RandomResizedCrop((h, w), scale=(0.25, 1.0), antialias=True),
                                         v2.RandomHorizontalFlip()])
        else:
            self.transform = v2.Compose([v2.Resize(min(h, w) * 8 // 7, antialias=True), v2.CenterCrop((h, w))])

    def _decode(self, index: int, channels: int) -> torch.Tensor:
        from PIL import Image
        from torchvision.transforms.v2.functional import pil_to_tensor

        with Image.open(self.samples[index][0]) as image:
            return pil_to_tensor(image.convert("L" if channels == 1 else "RGB"))

    def _image(self, index: int) -> torch.Tensor:
        image = self._cache.get(index)
        if image is None:
            image = self._decode(index, self.shape[0])
            if self.small and tuple(image.shape[1:]) != self.shape[1:]:
                from torchvision.transforms.v2.functional import resize

                image = resize(image, list(self.shape[1:]), antialias=True)
            # kept only in-process (a worker's copy is thrown away each epoch), only small, within a budget
            if self.small and torch.utils.data.get_worker_info() is None and self._cached < CACHE_BYTES:
                self._cache[index] = image
                self._cached += image.numel()
        return image

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self._image(index), self.samples[index][1]
        if not self.augment:
            out = image if self.transform is None else self.transform(image)
            return (out.float() / 255 - self._mean) / self._std, label
        draw = torch.Generator().manual_seed((self.augment_seed + index * 1_000_003) % 2**63)
        if self.transform is not None:
            with torch.random.fork_rng(devices=[]):  # v2 draws from the global generator: lend it, then restore
                torch.manual_seed(int(torch.randint(2**62, (), generator=draw)))
                return (self.transform(image).float() / 255 - self._mean) / self._std, label
        x = (image.float() / 255 - self._mean) / self._std
        h, w = x.shape[1:]
        pad = max(1, h // 8)
        x = torch.nn.functional.pad(x[None], (pad, pad, pad, pad), mode="reflect")[0]
        top, left = torch.randint(0, 2 * pad + 1, (2,), generator=draw).tolist()
        x = x[:, top:top + h, left:left + w]
        if bool(torch.rand((), generator=draw) < 0.5):
            x = x.flip(-1)
        return x.contiguous(), label


def image_folders(data: Path, input_shape: list[int] | tuple[int, ...] | None,
                  augment: bool = True) -> tuple[Images, Images]:
    """The train and val splits under ``data``, with the same classes and the same input shape (given, else
    the first training image's size); located errors when they are not there.

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
            splits.append(Images(data / split, tuple(input_shape) if input_shape else None,
                                 augment and split == "train"))
        except (FileNotFoundError, OSError) as err:
            raise SpecError(f"cannot read the '{split}' images: {err}", file=str(data / split),
                            expected="class folders holding image files") from None
    train, val = splits
    if train.classes != val.classes:
        raise SpecError("train and val have different classes", file=str(data),
                        expected=", ".join(train.classes), found=", ".join(val.classes))
    if val.shape != train.shape:
        val.set_shape(train.shape)
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
