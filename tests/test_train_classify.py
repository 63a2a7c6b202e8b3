"""The built-in classify trainer: same seed → the same numbers bit for bit, resume == uninterrupted, located
errors for a wrong classifier width, a diverging loss and missing data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from train_models import recipe, same_weights, tiny_data, tiny_net, weights

from blockstitch.errors import SpecError
from blockstitch.train import RecordingReporter, TrainError, fit_head, get_task
from blockstitch.train.checkpoint import LAST, load_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_data(tmp_path_factory.mktemp("shapes"))


def _fit(data: Path, trial: Path, model: nn.Module | None = None, seed: int = 0, **change: object):
    model = model if model is not None else tiny_net()
    reporter = RecordingReporter()
    result = get_task("classify").fit(model, recipe(**change), data, seed=seed, device="cpu", trial_dir=trial,
                                      reporter=reporter)
    return result, weights(model), reporter


def test_same_seed_same_numbers_bit_for_bit(data: Path, tmp_path: Path) -> None:
    first, w1, rep1 = _fit(data, tmp_path / "a")
    second, w2, rep2 = _fit(data, tmp_path / "b")
    assert first == second and rep1.epochs == rep2.epochs
    assert same_weights(w1, w2)
    assert set(first) >= {"top1", "top5", "best_top1", "best_epoch", "epochs", "val_loss", "train_loss"}
    assert first["epochs"] == 2 and [e for e, _, _ in rep1.epochs] == [1, 2]
    other, w3, _ = _fit(data, tmp_path / "c", seed=1)  # the seed is what decides: another one moves the weights
    assert not same_weights(w1, w3) and other["train_loss"] != first["train_loss"]
    assert torch.get_num_threads() == 1 and not torch.are_deterministic_algorithms_enabled()  # scope restored


def test_resume_after_a_crash_ends_where_an_uninterrupted_run_ends(data: Path, tmp_path: Path) -> None:
    straight, w_straight, _ = _fit(data, tmp_path / "straight")

    class Crash(RecordingReporter):
        def epoch(self, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
            raise KeyboardInterrupt  # "killed" right after epoch 1's checkpoint

    with pytest.raises(KeyboardInterrupt):
        get_task("classify").fit(tiny_net(), recipe(), data, seed=0, device="cpu", trial_dir=tmp_path / "resumed",
                                 reporter=Crash())
    assert load_checkpoint(tmp_path / "resumed" / LAST)["epoch"] == 1
    torch.manual_seed(12345)  # the caller's generators are somewhere else entirely
    resumed, w_resumed, reporter = _fit(data, tmp_path / "resumed", model=tiny_net(init_seed=99))
    assert resumed == straight and same_weights(w_resumed, w_straight)
    assert [e for e, _, _ in reporter.epochs] == [2] and "after epoch 1 of 2" in reporter.lines[0]
    again, w_again, rep_again = _fit(data, tmp_path / "resumed", model=tiny_net(init_seed=7))  # finished: no work
    assert again == straight and same_weights(w_again, w_straight) and rep_again.epochs == []


def test_a_checkpoint_of_another_trial_is_refused(data: Path, tmp_path: Path) -> None:
    _fit(data, tmp_path / "t", epochs=1)
    with pytest.raises(TrainError, match="another trial"):
        _fit(data, tmp_path / "t", epochs=1, lr=1e-2)
    stale = tmp_path / "t" / f".{LAST}.99999.tmp"  # a writer killed mid-save leaves this; the next save sweeps it
    stale.write_bytes(b"half")
    from blockstitch.train.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "t" / LAST, load_checkpoint(tmp_path / "t" / LAST))
    assert not stale.exists() and sorted(p.name for p in (tmp_path / "t").iterdir()) == [LAST]
    (tmp_path / "t" / LAST).write_bytes(b"not a checkpoint")
    with pytest.raises(TrainError, match="cannot read checkpoint"):
        _fit(data, tmp_path / "t", epochs=1)


def test_classifier_width_is_checked_and_fit_head_mends_it(data: Path, tmp_path: Path) -> None:
    model = tiny_net(classes=10)
    with pytest.raises(SpecError, match=r"gives logits 4×10, but the data has 3 classes") as info:
        _fit(data, tmp_path / "w", model=model, epochs=1)
    assert info.value.node == "fc" and "fit_head(model, 3)" in str(info.value)
    assert fit_head(model, 3) == "fc" and model.fc.out_features == 3 and model.fc.in_features == 16
    result, _, _ = _fit(data, tmp_path / "w2", model=model, epochs=1)
    assert result["epochs"] == 1


def test_fit_head_uses_timm_reset_classifier() -> None:
    import timm

    model = timm.create_model("resnet10t", pretrained=False, num_classes=7)
    assert fit_head(model, 3) == "reset_classifier"
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    with pytest.raises(SpecError, match="no nn.Linear"):
        fit_head(nn.Conv2d(3, 3, 1), 3)


class _Diverges(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 16 * 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * float("inf")


def test_a_non_finite_loss_stops_the_trial(data: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match=r"the loss is nan at epoch 1, step 1"):
        _fit(data, tmp_path / "nan", model=_Diverges(), epochs=1)


def test_missing_or_mismatched_folders_are_located(data: Path, tmp_path: Path) -> None:
    (tmp_path / "d" / "train" / "a").mkdir(parents=True)
    with pytest.raises(SpecError, match="no 'val' folder") as info:
        _fit(tmp_path / "d", tmp_path / "x", epochs=1)
    assert info.value.file == str(tmp_path / "d")
    (tmp_path / "d" / "val" / "a").mkdir(parents=True)
    with pytest.raises(SpecError, match="cannot read the 'train' images"):
        _fit(tmp_path / "d", tmp_path / "x", epochs=1)
    import shutil

    shutil.copytree(data, tmp_path / "e")
    (tmp_path / "e" / "val" / "square").rename(tmp_path / "e" / "val" / "squares")
    with pytest.raises(SpecError, match="different classes"):
        _fit(tmp_path / "e", tmp_path / "x", epochs=1)


def test_a_model_that_cannot_take_the_images_says_what_it_got(data: Path, tmp_path: Path) -> None:
    grey = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with pytest.raises(SpecError, match=r"cannot take the data's images \(4×3×16×16\)") as info:
        _fit(data, tmp_path / "c", model=grey, epochs=1)
    assert "input: [C, H, W]" in str(info.value)


def test_sgd_constant_no_augment_and_greyscale_input_run(data: Path, tmp_path: Path) -> None:
    grey = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    result, _, _ = _fit(data, tmp_path / "g", model=grey, epochs=1, optimizer="sgd", schedule="constant",
                          augment=False, input=[1, 12, 12], label_smoothing=0.1)
    assert result["epochs"] == 1 and 0.0 <= result["top1"] <= 100.0 and result["top5"] == 100.0  # 3 classes


def test_loading_in_a_worker_gives_the_same_numbers_as_in_process(data: Path, tmp_path: Path) -> None:
    in_process, w0, _ = _fit(data, tmp_path / "w0", epochs=1)
    worker, w1, _ = _fit(data, tmp_path / "w1", epochs=1, workers=1)
    assert worker == in_process and same_weights(w0, w1)
    _, w2, _ = _fit(data, tmp_path / "w2", epochs=1, augment=False)  # and augmentation did draw numbers
    assert not same_weights(w0, w2)


def test_small_image_augmentation_is_a_padded_crop_or_its_mirror_drawn_per_sample(data: Path) -> None:
    from blockstitch.train.images import image_folders

    train, _ = image_folders(data, None, augment=True)
    plain, _ = image_folders(data, None, augment=False)
    base, label = plain[4]
    padded = nn.functional.pad(base[None], (2, 2, 2, 2), mode="reflect")[0]  # 16 px: an eighth is 2
    crops = [c for t in range(5) for s in range(5) for c in (padded[:, t:t + 16, s:s + 16],
                                                             padded[:, t:t + 16, s:s + 16].flip(-1))]
    seen = set()
    for seed in range(8):
        train.augment_seed = seed
        image, same_label = train[4]
        assert same_label == label and torch.equal(image, train[4][0])  # a function of (seed, index)
        matches = [i for i, c in enumerate(crops) if torch.equal(c, image)]
        assert matches, "not a padded crop of the image"
        seen.add(matches[0])
    assert len(seen) > 1


def test_large_inputs_take_the_resized_crop_path_deterministically(data: Path, tmp_path: Path) -> None:
    first, w1, _ = _fit(data, tmp_path / "l1", epochs=1, input=[3, 72, 72])
    second, w2, _ = _fit(data, tmp_path / "l2", epochs=1, input=[3, 72, 72])
    assert first == second and same_weights(w1, w2)
