"""The training slice's data side: the generated shapes dataset, the recipe's bounds, the task registry."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from blockstitch.errors import SpecError
from blockstitch.train import SHAPES, Recipe, RecordingReporter, Reporter, get_task, make_shapes_dataset


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))}


def test_shapes_dataset_is_an_image_folder_pair_and_the_same_from_the_same_seed(tmp_path: Path) -> None:
    a = make_shapes_dataset(tmp_path / "a", classes=3, train_per_class=3, val_per_class=2, size=16, seed=5)
    b = make_shapes_dataset(tmp_path / "b", classes=3, train_per_class=3, val_per_class=2, size=16, seed=5)
    other = make_shapes_dataset(tmp_path / "c", classes=3, train_per_class=3, val_per_class=2, size=16, seed=6)
    assert _digests(a) == _digests(b)
    assert set(_digests(a)) == set(_digests(other)) and _digests(a) != _digests(other)
    from torchvision.datasets import ImageFolder

    train, val = ImageFolder(str(a / "train")), ImageFolder(str(a / "val"))
    assert train.classes == sorted(SHAPES[:3]) == val.classes
    assert len(train) == 9 and len(val) == 6
    image, label = train[0]
    assert image.size == (16, 16) and image.mode == "RGB" and label == 0


def test_more_images_leave_the_first_ones_unchanged(tmp_path: Path) -> None:
    small = _digests(make_shapes_dataset(tmp_path / "s", classes=2, train_per_class=2, val_per_class=1, size=16))
    large = _digests(make_shapes_dataset(tmp_path / "l", classes=2, train_per_class=4, val_per_class=1, size=16))
    assert len(large) == 2 * 5 and all(large[name] == digest for name, digest in small.items())


def test_a_made_folder_is_reused_and_a_foreign_one_refused(tmp_path: Path) -> None:
    root = make_shapes_dataset(tmp_path / "d", classes=2, train_per_class=1, val_per_class=1, size=16)
    first = next(root.rglob("*.png"))
    stamp = first.stat().st_mtime_ns
    assert make_shapes_dataset(root, classes=2, train_per_class=1, val_per_class=1, size=16) == root
    assert first.stat().st_mtime_ns == stamp
    with pytest.raises(SpecError, match="other arguments"):
        make_shapes_dataset(root, classes=3, train_per_class=1, val_per_class=1, size=16)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SpecError, match="not empty"):
        make_shapes_dataset(tmp_path / "mine", classes=2)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(SpecError, match="2..8 classes"):
        make_shapes_dataset(tmp_path / "x", classes=9)


def test_recipe_is_bounded_and_forbids_unknown_fields() -> None:
    assert Recipe().model_dump()["epochs"] == 10
    for bad in ({"epochs": 0}, {"epochs": 10**9}, {"batch": 0}, {"lr": 0}, {"label_smoothing": 1.0},
                {"input": [3, 32]}, {"input": [3, 10**6, 10**6]}, {"input": [4, 32, 32]}, {"optimizer": "adam"},
                {"epoch": 3}):
        with pytest.raises(ValidationError):
            Recipe(**bad)
    assert Recipe(input=[1, 28, 28]).input == [1, 28, 28]


def test_task_registry_names_the_nearest_task(monkeypatch: pytest.MonkeyPatch) -> None:
    from blockstitch.train import TASKS

    with pytest.raises(SpecError, match="did you mean 'classify'"):
        get_task("clasify")
    monkeypatch.delitem(TASKS, "detect", raising=False)
    with pytest.raises(SpecError, match="blockstitch.yolo.detect_task"):
        get_task("detect")


def test_reporters() -> None:
    Reporter().epoch(1, 2, {"top1": 1.0})  # the base does nothing and says nothing
    Reporter().log("x")
    r = RecordingReporter()
    r.epoch(1, 2, {"top1": 1.0})
    r.log("resumed")
    assert r.epochs == [(1, 2, {"top1": 1.0})] and r.lines == ["resumed"]
