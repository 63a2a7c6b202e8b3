"""An ablation end to end on a tiny network and dataset: rows, resume (reused and new trials), a failing variant
as a row, a user trainer from the command line, two workers, MLflow, and the run directory's lock."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch

from blockstitch.ablate import ablate
from blockstitch.ablate.store import RunStore, read_rows
from blockstitch.cli import main
from blockstitch.errors import SpecError

from ablate_helpers import Flaky, spec, trainer_file

torch.set_num_threads(1)


def test_run_resume_and_a_changed_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = ablate(spec(latency={"rounds": 3}), run_dir=run)
    assert [r["status"] for r in first.rows] == ["ok"] * 4 and first.counts["new"] == 4
    assert {p.name for p in first.files} >= {"table.md", "table.csv", "table.tex", "table.json"}
    base, eca = first.table["rows"]
    assert base["variant"] == "baseline" and eca["delta_params"] > 0 and base["latency_ms"] > 0
    ratios = [v / b for b, v in zip(base["latency_samples_ms"], eca["latency_samples_ms"], strict=True)]
    assert eca["latency_rounds"] == len(ratios) == 3 and eca["latency_ratio"] == statistics.median(ratios)
    # three rounds: the interval is the whole range, with the coverage 1 - 2·(1/8) that the table then states
    assert (eca["latency_ratio_low"], eca["latency_ratio_high"], eca["latency_ratio_coverage"]) == \
        (min(ratios), max(ratios), 0.75)
    assert eca["delta"] == pytest.approx(sum(eca["seeds"][s] - base["seeds"][s] for s in ("0", "1")) / 2)
    assert all(0 <= v <= 100 for v in base["seeds"].values())
    again = ablate(spec(latency={"rounds": 3}), run_dir=run)  # the same file: nothing trains again
    assert again.counts == {"reused": 4, "new": 0, "retried": 0, "stale": 0}
    assert all(r["reused"] for r in again.rows) and again.table["rows"][1]["seeds"] == eca["seeds"]
    more = spec(variants=spec()["variants"] + [{"name": "simam2", "insert": [{"after": "layer2",
                                                                             "block": {"kind": "simam"}}]}])
    third = ablate(more, run_dir=run, latency=False)
    assert third.counts["reused"] == 4 and third.counts["new"] == 2
    assert [r["variant"] for r in third.rows if not r["reused"]] == ["simam2", "simam2"]
    rows, bad = read_rows(run / "results.jsonl")
    assert len(rows) == 6 and not bad and len((run / "results.jsonl").read_text().splitlines()) == 6


def test_the_latency_phase_warns_of_a_loaded_machine(tmp_path: Path, monkeypatch) -> None:
    import blockstitch.spread
    from blockstitch.ablate.progress import Events

    class Notes(Events):
        def __init__(self) -> None:
            self.lines: list[str] = []

        def note(self, text: str) -> None:
            self.lines.append(text)

    monkeypatch.setattr(blockstitch.spread, "load_warning", lambda busy=0.75, own=1.0: "machine loaded: (the test's)")
    notes = Notes()
    ablate(spec(seeds=[0], latency={"rounds": 3}), run_dir=tmp_path / "run", trainer=trainer_file(tmp_path),
           events=notes)
    assert "  warning: machine loaded: (the test's)" in notes.lines
    notes.lines.clear()
    ablate(spec(seeds=[0]), run_dir=tmp_path / "run", trainer=trainer_file(tmp_path), events=notes)  # not timed
    assert not any("warning" in line for line in notes.lines)


def test_a_failing_variant_is_a_row(tmp_path: Path) -> None:
    flaky = {"name": "flaky", "insert": [{"after": "layer1", "block": Flaky}]}
    result = ablate(spec(variants=[flaky], seeds=[0], recipe={**spec()["recipe"], "epochs": 1},
                         latency={"rounds": 3}), run_dir=tmp_path / "run")
    status = {r["variant"]: r for r in result.rows}
    assert status["baseline"]["status"] == "ok"
    assert status["flaky"]["status"] == "failed" and "flaky block exploded" in status["flaky"]["error"]
    assert result.record("flaky")["status"] == "failed" and result.record("flaky")["latency_ms"] > 0
    assert "(failed: " in result.to_markdown()


def test_user_trainer_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ablation.json"
    bad = {"name": "bad", "replace": [{"path": "layer2.conv2", "block": {"kind": "conv", "out_channels": 3}}]}
    path.write_text(json.dumps(spec(variants=spec()["variants"] + [bad])))
    args = ["ablate", str(path), "--trainer", trainer_file(tmp_path), "--run-dir", str(tmp_path / "run"), "--json"]
    assert main(args) == 2  # a shape error: refused before anything trains
    assert "variant 'bad'" in capsys.readouterr().err and not (tmp_path / "run" / "results.jsonl").exists()
    assert main(args + ["--keep-going"]) == 1  # the bad variant is a failed row; the others trained
    captured = capsys.readouterr()
    assert captured.err == ""  # --json: the table on stdout, nothing else anywhere
    table = json.loads(captured.out)
    rows = {r["variant"]: r for r in table["rows"]}
    assert table["metric"] == "acc" and rows["bad"]["status"] == "failed"
    for name in ("baseline", "eca1"):  # the trainer scored each model by its parameter count (+ seed)
        assert rows[name]["seeds"] == {"0": rows[name]["params"], "1": rows[name]["params"] + 1}
    assert rows["eca1"]["delta"] == rows["eca1"]["delta_params"]


def test_two_workers_give_the_same_rows(tmp_path: Path) -> None:
    """Trials in two spawned processes: the same metrics as one after another, each row written once."""
    one = ablate(spec(seeds=[0], recipe={**spec()["recipe"], "epochs": 1}), run_dir=tmp_path / "one")
    two = ablate(spec(seeds=[0], recipe={**spec()["recipe"], "epochs": 1}), run_dir=tmp_path / "two", workers=2)
    assert {r["key"]: r["metrics"] for r in one.rows} == {r["key"]: r["metrics"] for r in two.rows}
    assert len((tmp_path / "two" / "results.jsonl").read_text().splitlines()) == 2


def test_mlflow_store_reads_back(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    result = ablate(spec(), run_dir=tmp_path / "run", trainer=trainer_file(tmp_path), mlflow=True)
    client = MlflowClient(tracking_uri=result.mlflow_uri)
    assert result.mlflow_uri.startswith("file://") and str(tmp_path / "run" / "mlruns") in result.mlflow_uri
    exp = client.get_experiment_by_name("micro_ablation")
    runs = client.search_runs([exp.experiment_id])
    trials = [r for r in runs if "blockstitch.key" in r.data.tags]
    assert sorted(r.data.tags["blockstitch.key"] for r in trials) == sorted(r["key"] for r in result.rows)
    for run in trials:
        row = next(r for r in result.rows if r["key"] == run.data.tags["blockstitch.key"])
        assert run.data.metrics["acc"] == row["metrics"]["acc"] and run.data.params["seed"] == str(row["seed"])
        assert run.data.params["variant"] == row["variant"] and run.info.status == "FINISHED"
    summary = next(r for r in runs if r.data.tags.get("blockstitch.summary") == "true")
    names = {a.path for a in client.list_artifacts(summary.info.run_id)}
    assert {"table.md", "table.csv", "table.json"} <= names


def test_a_second_driver_is_refused(tmp_path: Path) -> None:
    with RunStore(tmp_path) as store:
        store.append({"key": "a", "status": "ok"})
        with pytest.raises(SpecError, match="another ablation is running"):
            RunStore(tmp_path).__enter__()
    with RunStore(tmp_path):  # released when the first closed
        pass


def test_a_module_as_base_is_left_as_it_was(tmp_path: Path) -> None:
    """bs.ablate with an nn.Module as the base and a module class as a block: the module is copied, never
    changed; each variant's parameter count is what the trainer saw."""
    from blockstitch.meta import fingerprint

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                                            torch.nn.ReLU())
            self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x))

    torch.manual_seed(0)
    net = Net()
    before = fingerprint(net)
    result = ablate(base=net, grid={"block": [Flaky, "eca"], "after": ["body"]}, data=spec()["data"],
                    recipe={"epochs": 1, "input": [3, 16, 16]}, seeds=[0], latency={"enabled": False},
                    run_dir=tmp_path / "run", trainer=trainer_file(tmp_path))
    assert fingerprint(net) == before
    rows = {r["variant"]: r for r in result.table["rows"]}
    assert list(rows) == ["baseline", "Flaky@body", "eca@body"]
    assert rows["baseline"]["params"] == sum(p.numel() for p in net.parameters())
    assert rows["Flaky@body"]["delta_params"] == 8 and rows["Flaky@body"]["status"] == "ok"  # nothing trains
    assert all(r["seeds"] == {"0": r["params"]} for r in rows.values())


def test_progress_display_on_a_terminal(tmp_path: Path) -> None:
    """The rich display (trials done/total, epochs, ETA) draws on a terminal and says what was reused."""
    import io

    from rich.console import Console

    from blockstitch.ablate import RichEvents

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    ablate(spec(), run_dir=tmp_path / "run", trainer=trainer_file(tmp_path), events=RichEvents(console))
    first = screen.getvalue()
    assert "plan" in first and "eca1 seed 1: ok" in first and "trials" in first
    screen.truncate(0)
    ablate(spec(), run_dir=tmp_path / "run", trainer=trainer_file(tmp_path), events=RichEvents(console))
    assert "reused 4 finished trial(s)" in screen.getvalue()
