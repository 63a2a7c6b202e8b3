"""The JSON Schema of spec files, generated from the registry, so editors can autocomplete and check them."""

from __future__ import annotations

from typing import Annotated, Any, Optional, Union

from pydantic import ConfigDict, Field, PositiveInt, create_model

from ..blockspec import field_aliases
from ..registry import block_classes
from .spec import NetworkSpec

__all__ = ["network_schema"]


def network_schema() -> dict[str, Any]:
    """JSON Schema of a network spec: nodes are a union of every registered block, told apart by `kind`.

    >>> network_schema()["title"]
    'NetworkSpec'
    """
    node_models = []
    for cls in block_classes():
        node_models.append(create_model(
            f"{cls.__name__}Node",
            __base__=cls,
            __doc__=cls.__doc__,
            id=(Optional[str], Field(None, description="Node name; becomes the module name.")),
            from_=(Optional[Union[str, list[str]]],
                   Field(None, alias="from", description="Input node name(s); default the previous node.")),
            repeat=(Optional[PositiveInt], Field(None, description="Stack this block N times (id.0 … id.N-1).")),
        ))
    node = Annotated[Union[tuple(node_models)], Field(discriminator="kind")]  # type: ignore[valid-type]
    model = create_model(
        "NetworkSpec",
        __base__=NetworkSpec,
        __doc__=NetworkSpec.__doc__,
        nodes=(list[node], Field(min_length=1, description="The nodes, in order.")),  # type: ignore[valid-type]
    )
    model.model_config = ConfigDict(**{**NetworkSpec.model_config, "populate_by_name": True})
    schema = model.model_json_schema(by_alias=True)
    _paper_names(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def _paper_names(schema: dict[str, Any]) -> None:
    """A field the paper's code names otherwise (EMA's ``factor`` for ``groups``) is a property under that name
    too, so an editor accepts a spec copied from the paper (giving both is still refused when loading)."""
    defs = schema.get("$defs", {})
    for cls in block_classes():
        props = defs.get(f"{cls.__name__}Node", {}).get("properties", {})
        for name, field in cls.model_fields.items():
            for alias in field_aliases(name, field):
                if name in props:
                    props[alias] = {**props[name], "description": f"The paper's code's name for `{name}`: "
                                                                  + str(props[name].get("description", ""))}
