"""Reading a GraphQL-over-HTTP request strictly: every malformed body is a 400 with a code.

Strawberry trusts the body's shape: ``null`` or a JSON string crashed on ``data.get``, JSON
nested a thousand levels deep overflowed the parser's stack, bytes that are not UTF-8 and a
multipart ``map`` naming a path that does not exist raised whatever the dictionary walk hit — each
a plain-text 500 without a request id. Here each is a ``RequestRefused`` (BAD_REQUEST) that the
view answers in GraphQL's error shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateway.core import RequestRefused

# Deeper than any document, variables or JSON value this API takes; the bound keeps every later
# recursive walk (graphql-core's coercion, the JSON columns' encoder) far from the stack's end.
MAX_JSON_DEPTH = 64


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def decode_json(data: str | bytes, what: str = "The request body") -> Any:
    """JSON from UTF-8 text, refused when it is not UTF-8, not JSON, or nested past MAX_JSON_DEPTH."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestRefused(f"{what} is not UTF-8 text.") from None
    try:
        value = json.loads(data)
    except RecursionError:
        value = None
    except ValueError as error:  # JSONDecodeError, or a number too long to convert
        raise RequestRefused(f"{what} is not valid JSON: {str(error)[:200]}") from None
    else:
        # Each level opens a bracket: a text with no more of them than the limit cannot be deeper
        # (two C-speed counts, where walking every value cost a request 0.8% of its CPU).
        if data.count("{") + data.count("[") <= MAX_JSON_DEPTH or not _depth_exceeds(value, MAX_JSON_DEPTH):
            return value
    raise RequestRefused(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep.")


def request_object(data: Any) -> dict[str, Any]:
    """The body of one GraphQL request: a JSON object; a list would be a batch, which we do not take."""
    if isinstance(data, list):
        raise RequestRefused("Batched requests are not supported; send one operation per request.")
    if not isinstance(data, dict):
        raise RequestRefused('A GraphQL request is a JSON object such as {"query": "{ viewer { apiKeyId } }"}.')
    return data


def place_files(operations: Any, files_map: Any, files: Mapping[str, Any]) -> dict[str, Any]:
    """Put each uploaded file where the multipart ``map`` says (GraphQL multipart request spec).

    Every path must name an existing ``null`` under ``variables``; anything else is refused rather
    than walked into, so no map can make the request fail with a server error.
    """
    operations = request_object(operations)
    if not isinstance(files_map, dict) or not all(isinstance(paths, list) for paths in files_map.values()):
        raise RequestRefused('The multipart `map` must be an object of file part → list of paths, e.g. {"0": ["variables.file"]}.')
    for part, paths in files_map.items():
        if part not in files:
            raise RequestRefused(f"The multipart `map` names a file part {part[:60]!r} the request does not carry.")
        for path in paths:
            _place(operations, path, files[part])
    return operations


def _place(operations: dict[str, Any], path: Any, file: Any) -> None:
    keys = path.split(".") if isinstance(path, str) and path.startswith("variables.") else []
    container: Any = operations
    for position, key in enumerate(keys):
        last = position == len(keys) - 1
        if isinstance(container, dict) and key in container and (container[key] is None or not last):
            if last:
                container[key] = file
                return
            container = container[key]
        elif isinstance(container, list) and key.isdigit() and int(key) < len(container) and (container[int(key)] is None or not last):
            if last:
                container[int(key)] = file
                return
            container = container[int(key)]
        else:
            break
    shown = path[:100] if isinstance(path, str) else repr(path)[:100]
    raise RequestRefused(f"The multipart `map` path {shown!r} does not name a null inside `variables` of `operations`.")

