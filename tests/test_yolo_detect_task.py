"""The ``detect`` task: a stitched yolov8n trains through Ultralytics' trainer inside ``Task.fit``, reports every
epoch, leaves the trained weights in the model, resumes from Ultralytics' ``last.pt`` and reuses a finished run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("ultralytics")

import blockstitch as bs
from blockstitch.subject import subject
from blockstitch.train import Recipe, RecordingReporter, get_task

RECIPE = Recipe(epochs=1, batch=4, imgsz=64, lr=0.002, optimizer="sgd", warmup_epochs=0, threads=1)


def _stitched() -> torch.nn.Module:
    torch.manual_seed(0)
    base = subject("ultralytics:yolov8n.yaml").module(None)
    return bs.stitch(base, insert=[{"after": "model.[468]", "block": {"kind": "cbam"}}], input_shape=(3, 64, 64))[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from blockstitch.yolo import make_boxes_dataset

    return make_boxes_dataset(tmp_path_factory.mktemp("boxes"), classes=2, train=8, val=4, size=64)


def test_detect_is_registered_with_map_columns() -> None:
    import blockstitch.yolo.detect_task  # noqa: F401  (what the ablate driver imports for `task: detect`)

    task = get_task("detect")
    assert task.primary == "mAP50-95" and task.metrics[:2] == ("mAP50", "mAP50-95")


def test_fit_trains_in_place_reports_and_is_repeatable(data: Path, tmp_path: Path) -> None:
    import blockstitch.yolo.detect_task  # noqa: F401

    task = get_task("detect")
    runs = []
    for i in range(2):  # same seed, two trial folders: the same weights and numbers
        model, reporter = _stitched(), RecordingReporter()
        before = {k: v.clone() for k, v in model.get_submodule("model_8_cbam").state_dict().items()}
        result = task.fit(model, RECIPE, data.parent, seed=3, device="cpu", trial_dir=tmp_path / f"t{i}",
                          reporter=reporter)
        runs.append((model, result))
        assert set(task.metrics) <= set(result) and result["epochs"] == 1 and result["best_epoch"] == 1
        assert all(0.0 <= result[m] <= 100.0 for m in task.metrics)
        assert [e[:2] for e in reporter.epochs] == [(1, 1)] and "mAP50-95" in reporter.epochs[0][2]
        assert model.nc == 2 and "model_8_cbam" in dict(model.named_children())
        assert (tmp_path / f"t{i}" / "yolo" / "weights" / "last.pt").is_file()
        after = model.get_submodule("model_8_cbam").state_dict()
        assert any(not torch.equal(v, after[k]) for k, v in before.items())  # trained in place
    (a, ra), (b, rb) = runs
    assert ra == rb
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    again = RecordingReporter()
    reused = task.fit(_stitched(), RECIPE, data, seed=3, device="cpu", trial_dir=tmp_path / "t0", reporter=again)
    assert reused == ra and any("reused" in line for line in again.lines)


def test_fit_resumes_from_ultralytics_last_pt(data: Path, tmp_path: Path) -> None:
    import blockstitch.yolo.detect_task  # noqa: F401

    class Killed(Exception):
        pass

    class DiesAfterEpochOne(RecordingReporter):
        def epoch(self, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
            super().epoch(epoch, epochs, metrics)
            raise Killed  # the trial dies once epoch 1 is validated and saved

    task, recipe = get_task("detect"), RECIPE.model_copy(update={"epochs": 2})
    with pytest.raises(Killed):
        task.fit(_stitched(), recipe, data, seed=0, device="cpu", trial_dir=tmp_path, reporter=DiesAfterEpochOne())
    reporter, model = RecordingReporter(), _stitched()
    result = task.fit(model, recipe, data, seed=0, device="cpu", trial_dir=tmp_path, reporter=reporter)
    assert any("resuming" in line and "epoch 1 done" in line for line in reporter.lines)
    assert [e[:2] for e in reporter.epochs] == [(2, 2)] and result["epochs"] == 2
    assert "model_8_cbam" in dict(model.named_children()) and model.nc == 2


def test_a_two_variant_detect_ablation_has_map_columns(data: Path, tmp_path: Path) -> None:
    from blockstitch.ablate import ablate

    result = ablate({"name": "yolo_cbam", "base": "ultralytics:yolov8n.yaml", "task": "detect",
                     "data": str(data.parent), "recipe": {**RECIPE.model_dump(), "input": [3, 64, 64]},
                     "seeds": [0], "variants": [{"name": "cbam",
                                                 "insert": [{"after": "model.[468]", "block": {"kind": "cbam"}}]}],
                     "latency": {"enabled": False}}, run_dir=tmp_path / "run", workers=1, plot=False)
    table = result.table
    assert table["metric"] == "mAP50-95" and [r["variant"] for r in table["rows"]] == ["baseline", "cbam"]
    assert all(r["status"] == "ok" and "mAP50" in r["others"] for r in table["rows"]), table["rows"]
    assert "mAP50-95" in result.to_markdown()
    base, cbam = (next(r for r in result.rows if r["variant"] == v) for v in ("baseline", "cbam"))
    assert cbam["metrics"]["mAP50-95"] == table["rows"][1]["mean"] and base["metrics"]["epochs"] == 1
    assert table["rows"][1]["delta_params"] > 0
