"""A bundled, generated, learnable image dataset: coloured shapes on noise (nothing downloaded).

Every image is drawn from its own random stream, seeded by (seed, split, class, index): the same arguments
give the same bytes on every machine, and more images per class leave the first ones unchanged. The class is the
shape; colour, size, position, a small rotation and the background noise vary, so a network has to look at
form, not at a colour.

>>> import tempfile
>>> root = make_shapes_dataset(Path(tempfile.mkdtemp()) / "shapes", classes=3, train_per_class=2,
...                            val_per_class=1, size=16)
>>> sorted(p.name for p in (root / "train").iterdir())
['circle', 'square', 'triangle']
"""

from __future__ import annotations

import colorsys
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import SpecError

__all__ = ["make_shapes_dataset", "SHAPES"]

SHAPES = ("circle", "square", "triangle", "cross", "ring", "star", "diamond", "ex")
"""The shapes, in class order (``classes=k`` takes the first k)."""
_MARK = "blockstitch-shapes.json"
_VERSION = 1
_OVERSAMPLE = 4  # shapes are drawn at 4× and box-filtered down: smooth edges, same bytes everywhere
_MAX_PER_CLASS = 100_000
_SIZES = (8, 512)


def _polygon(kind: str, cx: float, cy: float, r: float, turn: float) -> list[tuple[float, float]]:
    """Corner points of a polygonal shape around (cx, cy), radius r, rotated by ``turn`` radians."""
    if kind == "square":
        corners = [(math.pi / 4 + k * math.pi / 2, r) for k in range(4)]
    elif kind == "diamond":
        corners = [(k * math.pi / 2, r) for k in range(4)]
    elif kind == "triangle":
        corners = [(-math.pi / 2 + k * 2 * math.pi / 3, r) for k in range(3)]
    elif kind == "star":
        corners = [(-math.pi / 2 + k * math.pi / 5, r if k % 2 == 0 else 0.45 * r) for k in range(10)]
    else:  # cross (+) and ex (×): a 12-corner plus sign, the ex turned by 45°
        w = 0.24 * r
        base = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r), (-w, -r), (-w, -w), (-r, -w), (-r, w),
                (-w, w), (-w, r)]
        extra = math.pi / 4 if kind == "ex" else 0.0
        corners = [(math.atan2(y, x) + extra, math.hypot(x, y)) for x, y in base]
    return [(cx + rad * math.cos(a + turn), cy + rad * math.sin(a + turn)) for a, rad in corners]


def _draw(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One image: a dark noisy background, then the shape in a bright colour of any hue, then more noise."""
    background = rng.uniform(0, 100, 3)  # dark, so the shape stands out by brightness whatever the hues
    canvas = np.clip(background[None, None, :] + rng.normal(0.0, 16.0, (size, size, 3)), 0, 255)
    colour = 255 * np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.4, 1), rng.uniform(0.7, 1)))
    big = size * _OVERSAMPLE
    r = rng.uniform(0.32, 0.40) * big
    cx, cy = big / 2 + rng.uniform(-0.08, 0.08, 2) * big
    turn = rng.uniform(-math.pi / 24, math.pi / 24)
    mask = Image.new("L", (big, big), 0)
    pen = ImageDraw.Draw(mask)
    if kind == "circle":
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif kind == "ring":
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        inner = 0.55 * r
        pen.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=0)
    else:
        pen.polygon(_polygon(kind, cx, cy, r, turn), fill=255)
    alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), dtype=np.float64)[:, :, None] / 255.0
    image = canvas * (1 - alpha) + colour[None, None, :] * alpha + rng.normal(0.0, 10.0, (size, size, 3))
    return Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8), "RGB")


def _check(classes: int, train_per_class: int, val_per_class: int, size: int) -> None:
    if not 2 <= classes <= len(SHAPES):
        raise SpecError(f"the shapes dataset has 2..{len(SHAPES)} classes, asked for {classes}",
                        expected=", ".join(SHAPES))
    for name, value in (("train_per_class", train_per_class), ("val_per_class", val_per_class)):
        if not 1 <= value <= _MAX_PER_CLASS:
            raise SpecError(f"{name} is 1..{_MAX_PER_CLASS:,}, found {value}")
    if not _SIZES[0] <= size <= _SIZES[1]:
        raise SpecError(f"the shapes dataset's image size is {_SIZES[0]}..{_SIZES[1]}, found {size}")


def make_shapes_dataset(root: Path, *, classes: int = 4, train_per_class: int = 100, val_per_class: int = 50,
                        size: int = 32, seed: int = 0) -> Path:
    """Write PNGs under ``root/train/<shape>/`` and ``root/val/<shape>/`` (an ImageFolder pair) and return
    ``root``. A folder made earlier with the same arguments is reused as it is; a folder holding anything else
    is refused, never overwritten. Files appear all at once (drawn in a temporary folder, then moved).

    >>> import tempfile
    >>> root = make_shapes_dataset(Path(tempfile.mkdtemp()), classes=2, train_per_class=1, val_per_class=1)
    >>> sorted(str(p.relative_to(root)) for p in root.rglob("*.png"))[:2]
    ['train/circle/00000.png', 'train/square/00000.png']
    """
    _check(classes, train_per_class, val_per_class, size)
    root = Path(root)
    wanted = {"dataset": "blockstitch shapes", "version": _VERSION, "classes": classes,
              "train_per_class": train_per_class, "val_per_class": val_per_class, "size": size, "seed": seed}
    mark = root / _MARK
    if mark.is_file():
        try:
            found = json.loads(mark.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = None
        if found == wanted:
            return root
        raise SpecError(f"{root} holds a shapes dataset made with other arguments", expected=json.dumps(wanted),
                        found=json.dumps(found), hint="choose another folder, or delete this one")
    leftovers = [p for p in root.iterdir() if not p.name.startswith(".tmp-shapes-")] if root.is_dir() else []
    if leftovers:
        raise SpecError(f"{root} is not empty and is not a shapes dataset: refusing to write into it",
                        found=", ".join(sorted(p.name for p in leftovers)[:5]),
                        hint="give make_shapes_dataset an empty or new folder")
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob(".tmp-shapes-*"):  # a run killed while drawing
        shutil.rmtree(old, ignore_errors=True)
    work = root / f".tmp-shapes-{os.getpid()}"
    for split_index, (split, count) in enumerate((("train", train_per_class), ("val", val_per_class))):
        for class_index, kind in enumerate(SHAPES[:classes]):
            folder = work / split / kind
            folder.mkdir(parents=True)
            for i in range(count):
                rng = np.random.default_rng([seed, split_index, class_index, i])
                _draw(kind, size, rng).save(folder / f"{i:05d}.png", optimize=False)
    for split in ("train", "val"):
        os.replace(work / split, root / split)
    work.rmdir()
    tmp = root / f".tmp-shapes-{os.getpid()}.json"
    tmp.write_text(json.dumps(wanted, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, mark)
    return root
