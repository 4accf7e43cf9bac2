"""What a query selects below the field being resolved, read before its children resolve.

A list resolver that knows its items' children will be asked for can read them in its own
session, in one query each, and hand them to the children's resolvers; those then answer from rows
in hand, as plain functions. graphql-core runs a plain function's field without a coroutine, a
task or a DataLoader round, which is most of what a page of posts with their targets and accounts
used to cost (issue 21).
"""

from __future__ import annotations

from collections.abc import Iterable

from strawberry.types.nodes import SelectedField, Selection

from schema.context import Info

Path = tuple[str, ...]


def selected_paths(info: Info) -> frozenset[Path]:
    """Every field path selected below the current field, fragments flattened: ``("nodes", "targets")``."""
    paths: set[Path] = set()

    def walk(selections: Iterable[Selection], prefix: Path) -> None:
        for selection in selections:
            if isinstance(selection, SelectedField):
                path = (*prefix, selection.name)
                paths.add(path)
                walk(selection.selections, path)
            else:  # a fragment spread or an inline fragment: its fields belong to the object it sits in
                walk(selection.selections, prefix)

    for field in info.selected_fields:
        walk(field.selections, ())
    return frozenset(paths)


def selects_below(paths: frozenset[Path], *tails: Path) -> bool:
    """Whether a connection's items select any of ``tails``, as ``nodes { … }`` or ``edges { node { … } }``."""
    return any(("nodes", *tail) in paths or ("edges", "node", *tail) in paths for tail in tails)
