"""Which names a node may have: a node id becomes a module attribute (``model.layer1``) and a line of generated
Python (torch.fx writes ``self.layer1(x)``), so it must be an identifier that shadows nothing.

Refused, with the reason, when a spec is checked (not later, as a library's ``KeyError`` or ``SyntaxError``):
Python keywords (``class``, ``None``), names that ``nn.Module`` or an fx ``GraphModule`` already has
(``training``, ``forward``, ``eval``, ``to``, ``code``, ``graph``), ``self``, dunder names
(``__class__``), anything that is not an identifier, and names longer than :data:`MAX_NAME`.

>>> name_problem("conv1") is None
True
>>> name_problem("layer1.0.training")
"'training' is an attribute every nn.Module has: the block would shadow it"
"""

from __future__ import annotations

import keyword
import re

__all__ = ["MAX_NAME", "RESERVED", "name_problem"]

MAX_NAME = 255
"""Characters of a node id or a network's name (a file name's limit on most systems)."""

RESERVED = frozenset({
    "T_destination", "_apply", "_backward_hooks", "_backward_pre_hooks", "_boxed_call", "_buffers", "_call_impl",
    "_code", "_compiled_call_impl", "_create_node_hooks", "_deepcopy_hooks", "_deepcopy_init", "_erase_node_hooks",
    "_forward_hooks", "_forward_hooks_always_called", "_forward_hooks_with_kwargs", "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs", "_get_backward_hooks", "_get_backward_pre_hooks", "_get_name", "_graph",
    "_is_full_backward_hook", "_lineno_map", "_load_from_state_dict", "_load_state_dict_post_hooks",
    "_load_state_dict_pre_hooks", "_maybe_warn_non_full_backward_hook", "_modules", "_named_members",
    "_non_persistent_buffers_set", "_parameters", "_prologue_start", "_recompile_submodules",
    "_register_create_node_hook", "_register_deepcopy_hook", "_register_erase_node_hook",
    "_register_load_state_dict_pre_hook", "_register_replace_node_hook", "_register_state_dict_hook",
    "_replace_hooks", "_replicate_for_data_parallel", "_save_to_state_dict", "_set_replace_hook", "_slow_forward",
    "_state_dict_hooks", "_state_dict_pre_hooks", "_tracer_cls", "_tracer_extras", "_unregister_create_node_hook",
    "_unregister_deepcopy_hook", "_unregister_erase_node_hook", "_unregister_replace_node_hook", "_version",
    "_wrapped_call_impl", "add_module", "add_submodule", "apply", "bfloat16", "buffers", "call_super_init",
    "children", "code", "compile", "cpu", "cuda", "delete_all_unused_submodules", "delete_submodule", "double",
    "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter",
    "get_submodule", "graph", "half", "ipu", "load_state_dict", "meta", "modules", "mtia", "named_buffers",
    "named_children", "named_modules", "named_parameters", "parameters", "print_readable", "recompile",
    "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook",
    "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter", "register_state_dict_post_hook",
    "register_state_dict_pre_hook", "requires_grad_", "self", "set_extra_state", "set_submodule", "shape_env",
    "share_memory", "state_dict", "to", "to_empty", "to_folder", "train", "training", "type", "xpu", "zero_grad"
})
"""Attributes of ``nn.Module`` and ``torch.fx.GraphModule`` (class and instance, dunders aside) and ``self``
(tests/test_hostile_names.py checks this list against the installed torch)."""

_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")


def name_problem(node_id: str) -> str | None:
    """Why ``node_id`` (dotted parts: ``layer1.0.conv``) cannot name a module, or None when it can."""
    if len(node_id) > MAX_NAME:
        return f"a name of {len(node_id):,} characters (at most {MAX_NAME})"
    parts = node_id.split(".")
    for i, part in enumerate(parts):
        if not _PART.fullmatch(part) or (i == 0 and part.isdigit()):
            return "not a name: letters, digits and _ separated by dots, starting with a letter or _"
        if keyword.iskeyword(part):
            return f"'{part}' is a Python keyword"
        if part.startswith("__") and part.endswith("__"):
            return f"'{part}' is a Python special name"
        if part == "self":
            return "'self' names the module itself in the Python torch.fx generates"
        if part in RESERVED:
            return f"'{part}' is an attribute every nn.Module has: the block would shadow it"
    return None
