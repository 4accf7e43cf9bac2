"""Stripe-shaped metadata: a small string→string map the caller owns.

Updates merge key by key: a key set to ``""`` is removed, other keys are set, keys not named are
kept; passing ``null`` for the whole map clears it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.core import UserError

MAX_KEYS = 50
MAX_KEY_LENGTH = 40
MAX_VALUE_LENGTH = 500


def _check_entry(key: Any, value: Any, field: str) -> None:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise UserError(
            "METADATA_KEY_INVALID", f"Metadata keys are 1 to {MAX_KEY_LENGTH} characters.", [field, str(key)[:MAX_KEY_LENGTH]]
        )
    if not isinstance(value, str):
        raise UserError("METADATA_VALUE_NOT_STRING", f"Metadata value of {key!r} must be a string.", [field, key])
    if len(value) > MAX_VALUE_LENGTH:
        raise UserError(
            "METADATA_VALUE_TOO_LONG", f"Metadata value of {key!r} exceeds {MAX_VALUE_LENGTH} characters.", [field, key]
        )


def _check_size(metadata: Mapping[str, str], field: str) -> None:
    if len(metadata) > MAX_KEYS:
        raise UserError("METADATA_TOO_MANY_KEYS", f"Metadata holds at most {MAX_KEYS} keys.", [field])


def validate_metadata(metadata: Any, field: str = "metadata") -> dict[str, str]:
    """A new object's metadata (``""`` values are simply left out)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise UserError("METADATA_NOT_OBJECT", "Metadata must be an object of strings.", [field])
    for key, value in metadata.items():
        _check_entry(key, value, field)
    result = {key: value for key, value in metadata.items() if value != ""}
    _check_size(result, field)
    return result


def merge_metadata(current: Mapping[str, str], update: Any, field: str = "metadata") -> dict[str, str]:
    if update is None:
        return {}
    if not isinstance(update, Mapping):
        raise UserError("METADATA_NOT_OBJECT", "Metadata must be an object of strings.", [field])
    merged = dict(current)
    for key, value in update.items():
        _check_entry(key, value, field)
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    _check_size(merged, field)
    return merged
