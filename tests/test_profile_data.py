"""Data-dependent counts (a detector): the profile states the proposals and detections its count depended on,
and the cost per proposal — truth: the model's own run on the same input, its RPN's and heads' outputs read with
plain forward hooks and its work counted by torch's FlopCounterMode; a batch over the real-run limit runs in
chunks whose sum equals the one-run count, and what cannot run is a located message, never torch's raw error."""

from __future__ import annotations

import json

import pytest
import torch
from foreign_models import detector
from torch.utils.flop_counter import FlopCounterMode

import blockstitch as bs
from blockstitch import meta
from blockstitch.cli import main
from blockstitch.errors import SpecError


@pytest.fixture(scope="module")
def model_and_shape() -> tuple[torch.nn.Module, tuple[int, ...]]:
    torch.manual_seed(0)
    return detector()  # fasterrcnn_mobilenet_v3_large_fpn at 96², random weights, 3 classes, nothing downloaded


@pytest.fixture(scope="module")
def batch_run(model_and_shape) -> bs.Profile:
    model, shape = model_and_shape
    return bs.profile(model, shape, batch=2)


def test_stated_counts_are_what_the_models_own_run_saw(model_and_shape, batch_run) -> None:
    model, shape = model_and_shape
    seen: dict[str, list[int]] = {}

    def proposals(module, args, out) -> None:  # RegionProposalNetwork returns (boxes per image, losses)
        seen["proposals"] = [len(b) for b in out[0]]

    def detections(module, args, out) -> None:  # RoIHeads returns (detections per image, losses)
        seen["detections"] = [len(d["boxes"]) for d in out[0]]

    hooks = [model.rpn.register_forward_hook(proposals), model.roi_heads.register_forward_hook(detections)]
    try:
        with FlopCounterMode(display=False) as flops, torch.no_grad():
            torch.manual_seed(0)
            model(*meta.real_inputs([(2, *shape)], torch.float32))  # the input the profile says it used
    finally:
        for h in hooks:
            h.remove()
    data = batch_run.data_dependent
    assert data is not None and data.runs == 1 and data.weights == "the module's own"
    assert data.proposals == seen["proposals"] and data.detections == seen["detections"]
    assert batch_run.flops == flops.get_total_flops()
    heads = sum(flops.get_flop_counts()["FasterRCNN.roi_heads"].values()) // 2
    assert data.per_proposal_macs == heads // sum(seen["proposals"])
    assert data.per_item_macs == batch_run.macs // 2
    line = data.line()
    assert f"{seen['proposals'][0]} proposals/image" in line and "per proposal" in line
    assert json.loads(json.dumps(batch_run.to_dict()))["data_dependent"]["proposals_per_image"] == seen["proposals"]
    assert "Data-dependent: counted on one real run" in batch_run.to_markdown()


def test_a_batch_over_the_limit_runs_in_chunks_that_sum_to_one_run(model_and_shape, batch_run, monkeypatch) -> None:
    model, shape = model_and_shape
    monkeypatch.setattr(meta, "REAL_RUN_MAX_INPUT", 3 * 96 * 96)  # one sample fits, the batch of 2 does not
    chunked = bs.profile(model, shape, batch=2)
    assert chunked.data_dependent is not None and (chunked.data_dependent.runs, chunked.data_dependent.samples_per_run) \
        == (2, 1)
    assert chunked.macs == batch_run.macs  # (activation bytes are per run: anchors, sizes — not compared)
    assert chunked.data_dependent.proposals == batch_run.data_dependent.proposals
    assert chunked.data_dependent.detections == batch_run.data_dependent.detections
    assert [n.macs for n in chunked.nodes] == [n.macs for n in batch_run.nodes]
    assert chunked.nodes[1].in_shape == [2, *shape]  # shapes given for the whole batch
    assert [(n.in_shapes, n.out_shape) for n in chunked.nodes] == [(n.in_shapes, n.out_shape) for n in batch_run.nodes]
    assert chunked.method.startswith("2 real runs") and "summed" in chunked.data_dependent.line()


def test_one_sample_over_the_limit_is_a_located_message(model_and_shape, monkeypatch) -> None:
    model, shape = model_and_shape
    monkeypatch.setattr(meta, "REAL_RUN_MAX_INPUT", 1000)
    with pytest.raises(SpecError, match="real-run limit of 1,000"):
        bs.profile(model, shape)
    with pytest.raises(SpecError, match="real-run limit of 1,000"):  # stitch's shape run: the same message
        bs.stitch(model, insert=[{"after": "backbone.body.3", "block": {"kind": "se"}}], input_shape=shape)


def test_a_torchvision_detector_by_name_is_counted_for_real(capsys) -> None:
    assert main(["profile", "torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", "--input", "3,64,64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["method"].startswith("real run") and data["data_dependent"]["weights"] == "random"
    assert len(data["data_dependent"]["proposals_per_image"]) == 1 and data["macs"] > 0


def test_check_of_a_torchvision_detector_states_its_data_dependence(capsys) -> None:
    """check shares profile's real run for a detector: no meta output probe (its outputs depend on the data)."""
    assert main(["check", "torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", "--input", "3,64,64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["outputs"] is None and data["data_dependent"]["weights"] == "random"
    assert main(["check", "torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", "--input", "3,64,64"]) == 0
    out = capsys.readouterr().out
    assert "outputs that depend on the data" in out and "counted on real runs" in out
