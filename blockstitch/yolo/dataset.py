"""A small YOLO-format detection dataset drawn from a seed: coloured rectangles on noise.

Each class is one colour; each image holds one to three rectangles (their boxes are the labels), so a detector
learns it in a few epochs and a test can train on it in seconds. The same seed writes the same bytes.

>>> data = make_boxes_dataset("shapes", classes=3, train=16, val=8, size=64)
>>> data.name
'data.yaml'
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["COLOURS", "make_boxes_dataset"]

COLOURS = ((230, 40, 40), (40, 200, 40), (40, 80, 230), (230, 200, 40), (200, 40, 200), (40, 200, 200))
"""One colour per class (up to six classes)."""
_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan")
MAX_IMAGES = 100_000
MAX_SIZE = 4096


def make_boxes_dataset(root: str | Path, *, classes: int = 3, train: int = 16, val: int = 8, size: int = 64,
                       seed: int = 0, polygons: bool = False) -> Path:
    """Write ``root/images/{train,val}/*.png`` and ``root/labels/{train,val}/*.txt`` (YOLO format: ``class cx cy
    w h``, normalised; with ``polygons`` each rectangle as its outline ``class x1 y1 … x4 y4``, which segmentation
    needs and detection reads as the box) and ``root/data.yaml``; return the YAML's path.

    >>> make_boxes_dataset(tmp_path, classes=2, train=4, val=2).read_text().splitlines()[1]
    'train: images/train'
    """
    import numpy as np
    from PIL import Image

    if not 1 <= classes <= len(COLOURS):
        raise ValueError(f"classes is 1..{len(COLOURS)}, found {classes}")
    if not (1 <= train <= MAX_IMAGES and 1 <= val <= MAX_IMAGES and 16 <= size <= MAX_SIZE):
        raise ValueError(f"train/val are 1..{MAX_IMAGES:,} images and size 16..{MAX_SIZE}; found {train}, {val}, "
                         f"{size}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        images, labels = root / "images" / split, root / "labels" / split
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = (rng.random((size, size, 3)) * 90).astype(np.uint8)  # dark noise: rectangles stand out
            lines = []
            for _ in range(int(rng.integers(1, 4))):
                cls = int(rng.integers(classes))
                w, h = (int(v) for v in rng.integers(size // 5, size // 2, 2))
                x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
                pixels[y0:y0 + h, x0:x0 + w] = COLOURS[cls]
                if polygons:
                    corners = ((x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h))
                    lines.append(f"{cls} " + " ".join(f"{x / size:.6f} {y / size:.6f}" for x, y in corners))
                else:
                    lines.append(f"{cls} {(x0 + w / 2) / size:.6f} {(y0 + h / 2) / size:.6f} {w / size:.6f} "
                                 f"{h / size:.6f}")
            Image.fromarray(pixels).save(images / f"{split}_{i:05d}.png")
            (labels / f"{split}_{i:05d}.txt").write_text("\n".join(lines) + "\n")
    names = "".join(f"  {c}: {_NAMES[c]}\n" for c in range(classes))
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root.resolve()}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return yaml
