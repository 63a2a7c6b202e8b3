"""Loading a local weights file (`.safetensors` or `.pt`, never pickled code) into a base network."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import SpecError, fmt_shape

__all__ = ["read_weights", "load_into"]


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from `.safetensors` (safetensors) or `.pt`/`.pth`/`.bin` (`torch.load(weights_only=True)`)."""
    file = Path(path)
    if not file.is_file():
        raise SpecError(f"weights file not found: {path}", path="weights")
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(file))
        except Exception as err:  # noqa: BLE001 — a truncated or corrupt file is the user's file, reported as such
            raise SpecError(f"cannot read weights file {path}: {str(err).splitlines()[0] if str(err) else err!r}",
                            path="weights", hint="is it a complete .safetensors file?") from None
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 — anything unreadable is the user's file, reported as such
        raise SpecError(f"cannot read weights file {path}: {str(err).splitlines()[0]}", path="weights",
                        hint="save with torch.save(model.state_dict(), path) or safetensors") from None
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise SpecError(f"{path} does not hold a state_dict (name → tensor)", path="weights")
    return data


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load strictly; a file that does not fit names what is missing, unexpected and mis-shaped."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [f"{k} (file {fmt_shape(state[k].shape)}, model {fmt_shape(own[k].shape)})"
                 for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or misshaped:
        def few(items: list[str]) -> str:
            return ", ".join(items[:5]) + (f", … ({len(items) - 5} more)" if len(items) > 5 else "") or "none"
        raise SpecError(f"weights file {source} does not fit the base network",
                        path="weights", found=f"missing: {few(missing)}; unexpected: {few(unexpected)}; "
                                              f"mis-shaped: {few(misshaped)}",
                        hint="was it saved from the same architecture (timm vs torchvision names differ)?")
    with torch.no_grad():
        for k, v in state.items():
            if not own[k].is_meta:  # a meta base (checking only) has nothing to copy into
                own[k].copy_(v)
