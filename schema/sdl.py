"""The schema as SDL, the text committed as schema.graphql."""

from __future__ import annotations

from schema.root import build_schema


def export_sdl() -> str:
    return build_schema().as_str().rstrip() + "\n"
