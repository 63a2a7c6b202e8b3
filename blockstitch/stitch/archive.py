"""A stitched network as one file another script can load: its edit spec (data) and its state_dict, in a
``.pt`` (read back with ``weights_only=True``) or a ``.safetensors`` (the spec in its metadata). Loading
rebuilds the network from the spec — no pickled code — and loads every tensor strictly.

>>> save_stitched(model, spec_data, "cbam_r50.pt")          # `blockstitch stitch cbam_resnet50 -o cbam_r50.pt`
>>> model = bs.load("cbam_r50.pt")                          # in another script
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import SpecError

__all__ = ["FORMAT", "save_stitched", "load"]

FORMAT = "blockstitch.stitched/1"
"""The archive format tag (also the safetensors metadata key ``format``)."""


def portable_spec(data: dict[str, Any], spec_file: str | None) -> dict[str, Any]:
    """The edit spec as it goes into an archive: ``weights:`` dropped (the archive holds every tensor) and an
    ``extends:`` path made absolute, so the archive loads from anywhere on this machine."""
    spec = {k: v for k, v in data.items() if k != "weights"}
    base = spec.get("extends")
    if spec_file and isinstance(base, str) and ":" not in base:
        candidate = Path(spec_file).parent / base
        if candidate.is_file():
            spec["extends"] = str(candidate.resolve())
    return spec


def save_stitched(model: nn.Module, spec: dict[str, Any], path: str | Path) -> Path:
    """Write ``model``'s state_dict and the edit ``spec`` it was built from to ``path`` (``.pt``/``.safetensors``).

    >>> save_stitched(stitched_model, {"name": "x", "extends": "resnet18", "insert": [...]}, "x.safetensors")
    """
    out = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    text = json.dumps(spec)
    if out.suffix.lower() == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.clone() for k, v in state.items()}, str(out), metadata={"format": FORMAT, "spec": text})
    else:
        torch.save({"format": FORMAT, "spec": text, "state_dict": state}, out)
    return out


def _read(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 — safe_open has no __iter__
        else:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            meta, state = (blob, blob.get("state_dict", {})) if isinstance(blob, dict) else ({}, {})
    except (OSError, RuntimeError, ValueError) as err:
        raise SpecError(f"{path}: cannot read it: {err}") from None
    if meta.get("format") != FORMAT or not isinstance(meta.get("spec"), str):
        raise SpecError(f"{path} is not a stitched network written by `blockstitch stitch`", file=str(path),
                        expected=f"format {FORMAT}", hint="a plain state_dict loads with model.load_state_dict")
    return json.loads(meta["spec"]), state


def load(path: str | Path, device: str = "cpu") -> nn.Module:
    """The stitched network in ``path`` (written by ``blockstitch stitch … -o``), rebuilt from its edit spec with
    every tensor loaded strictly, in eval mode.

    >>> model = bs.load("cbam_r50.pt")
    """
    from ..assemble import Located
    from . import build_edit

    file = Path(path)
    spec, state = _read(file)
    model = build_edit(Located(spec, file=str(file)), device=device).model
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise SpecError(f"{file}: its tensors do not fit the network its spec builds: "
                        f"{str(err).splitlines()[0]}", file=str(file)) from None
    return model.eval()
