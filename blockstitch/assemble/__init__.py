"""Spec → resolved nodes → wiring → plan (meta tensors) → ``nn.Module``."""

from .builder import build_module
from .plan import Plan, Step
from .planner import make_plan
from .source import Located, load_file, load_text
from .spec import Network, NetworkSpec, Node, resolve
from .zoo import find_spec, specs_dir, zoo_names

__all__ = ["Located", "Network", "NetworkSpec", "Node", "Plan", "Step", "build_module", "find_spec", "load_file",
           "load_text", "make_plan", "resolve", "specs_dir", "zoo_names"]
