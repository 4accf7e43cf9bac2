"""Our version of Strawberry's ``DateTime`` scalar: an instant outside UTC's calendar is not a DateTime.

Strawberry parses any ISO 8601 string with an offset up to ±23:59, so ``9999-12-31T23:59:00-23:59``
parses, and the first service to convert it to UTC (as every stored time is) overflows into an
INTERNAL error. Refused while the variable is coerced instead, the caller gets BAD_USER_INPUT
naming the variable. The name, description and output are Strawberry's, so the SDL is unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NewType

import dateutil.parser
from strawberry.schema.types.base_scalars import DateTimeDefinition, wrap_parser
from strawberry.types.scalar import ScalarDefinition


def parse_datetime(value: str) -> datetime:
    parsed = dateutil.parser.isoparse(value)
    if parsed.tzinfo is not None:
        try:
            parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError("Its UTC time falls outside the years 1 to 9999.") from None
    return parsed


DATETIME = ScalarDefinition(
    name=DateTimeDefinition.name,
    description=DateTimeDefinition.description,
    specified_by_url=DateTimeDefinition.specified_by_url,
    serialize=DateTimeDefinition.serialize,
    parse_value=wrap_parser(parse_datetime, "DateTime"),
    parse_literal=None,
    origin=datetime,
)

# A counter that may pass 32 bits (GraphQL's Int stops at 2^31 - 1; a viral post's views do not).
Count = NewType("Count", int)
COUNT = ScalarDefinition(
    name="Count",
    description="A whole number that may exceed 32 bits (a view count), sent as a JSON number.",
    specified_by_url=None,
    serialize=int,
    parse_value=int,
    parse_literal=None,
)

SCALAR_OVERRIDES = {datetime: DATETIME, Count: COUNT}
