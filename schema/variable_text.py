"""Variables whose text no database can store are refused before anything runs.

JSON may carry a lone UTF-16 surrogate (``"\\ud800"``) that no UTF-8 encoder accepts, and a NUL
character PostgreSQL's text type refuses. Either reached the storage layer as an INTERNAL error
(SQLite's UnicodeEncodeError, asyncpg's encoding error) once a resolver wrote it. Walking the
variables once, before execution, turns both into BAD_USER_INPUT naming the variable and the path
inside it, for every operation, every argument and every transport (HTTP, WebSocket, SSE).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from gateway.core import BadInput

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value (dict keys included) with the path that reaches it; iterative,
    so a deeply nested value cannot exhaust the stack."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            yield item, where
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str):
                    yield key, where
                    stack.append((child, f"{where}.{key}"))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))


def unstorable_text(variables: dict[str, Any]) -> BadInput | None:
    """The first string of ``variables`` that holds a NUL or a lone surrogate, as the error to report."""
    for name, value in variables.items():
        for text, path in _strings(value, name):
            found = _UNSTORABLE.search(text)
            if found is not None:
                what = "a NUL character" if found.group() == "\x00" else f"a lone surrogate (U+{ord(found.group()):04X})"
                where = f" at '{path[:200]}'" if path != name else ""
                return BadInput(f"Variable '${name}' has invalid value{where}: text must be valid Unicode; it holds {what}.", path[:200])
    return None


class VariableText(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        """Raised, not set as the result: Strawberry ends a query, a mutation and a subscription
        alike on an error raised here, while a subscription would ignore a result set here."""
        context = self.execution_context
        if context.graphql_document is not None and not context.pre_execution_errors:
            problem = unstorable_text(context.variables or {})
            if problem is not None:
                raise problem
        yield
