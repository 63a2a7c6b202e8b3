"""The public API: load a spec, plan it on meta tensors, build it.

>>> import blockstitch as bs
>>> plan = bs.plan("resnet50")            # a zoo name, a path, or a dict
>>> plan.params
25557032
>>> model = bs.build("resnet50")          # a plain nn.Module (torch.fx GraphModule)

A thin facade: the functions live in :mod:`blockstitch.networks`, one floor down, so the tools use them
without importing the API (the API sits on top of the tools, never under them).
"""

from __future__ import annotations

from .networks import Source, build, is_edit_source, load_spec, plan

__all__ = ["Source", "load_spec", "plan", "build", "is_edit_source"]
