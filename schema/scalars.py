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

# Int64: GraphQL's Int stops at 2^31 - 1, and a budget of 2.1 billion IDR is 210 billion minor
# units. Sent as a string, so a JavaScript client (whose numbers are exact only to 2^53) keeps
# every digit; accepted as a string of digits or an integer.
Int64 = NewType("Int64", int)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parse_int64(value: str) -> int:
    text = value.strip()
    if not text.removeprefix("-").isdigit():
        raise ValueError("An Int64 is an integer, or a string of digits.")
    number = int(text)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError("The value does not fit a signed 64-bit integer.")
    return number


INT64 = ScalarDefinition(
    name="Int64",
    description="A signed 64-bit integer, sent as a string so JavaScript clients keep every digit; accepted as a string or an integer.",
    specified_by_url=None,
    serialize=str,
    parse_value=wrap_parser(parse_int64, "Int64", accept_non_string=True),  # an integer is fine too; a float is not
    parse_literal=None,
    origin=Int64,  # type: ignore[arg-type]
)

SCALAR_OVERRIDES = {datetime: DATETIME, Count: COUNT, Int64: INT64}
