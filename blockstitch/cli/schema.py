"""`blockstitch schema`: the JSON Schema of spec files (the generated one unless plugins add blocks)."""

from __future__ import annotations

import argparse
import json

from .common import plugged

NAME = "schema"
HELP = "print the JSON Schema of spec files"


def arguments(p: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(args: argparse.Namespace) -> int:
    """Print the schema (read from the generated file while it matches the sources; no torch then)."""
    from ..generated import SCHEMA_FILE, block_sources, digest, read

    schema = None if plugged() else read(SCHEMA_FILE, digest(block_sources()))
    if schema is None:
        from ..regenerate import live_schema

        schema = live_schema()
    print(json.dumps(schema, indent=2))
    return 0
