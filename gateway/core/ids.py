"""Stripe-style prefixed identifiers: ``org_4fT9…``.

The prefix tells a human (and our parsers) what an id names; the rest is random, so ids are
opaque to clients and safe to use as Relay global ids.
"""

from __future__ import annotations

import secrets
import string

ALPHABET = string.ascii_letters + string.digits
RANDOM_LENGTH = 24

# Every kind of object with an id, by prefix. Parsers refuse prefixes not listed here.
PREFIXES: dict[str, str] = {
    "org": "Organization",
    "key": "ApiKey",
    "acct": "Account",
    "conn": "Connection",
    "post": "Post",
    "tgt": "Target",
    "att": "Attempt",
    "med": "MediaAsset",
    "job": "Job",
    "camp": "Campaign",
    "whk": "WebhookEndpoint",
    "whd": "WebhookDelivery",
    "adc": "AdCampaign",
    "adacct": "AdAccount",
    "adset": "AdSet",
    "adv": "Ad",
    "aud": "AuditEntry",
    "idem": "IdempotencyRecord",
    "apv": "ApprovalEntry",
    "pq": "PostingQueue",
}


_SPACE = len(ALPHABET) ** RANDOM_LENGTH


def new_id(prefix: str) -> str:
    """A new id: ``RANDOM_LENGTH`` characters drawn uniformly from ``ALPHABET``.

    One draw of a number below 62**24, written in base 62, is the same distribution as 24
    draws of a character, for one call to the OS's randomness instead of 24: an import of
    thousands of posts makes five ids a row.
    """
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    number = secrets.randbelow(_SPACE)
    characters = []
    for _ in range(RANDOM_LENGTH):
        number, digit = divmod(number, len(ALPHABET))
        characters.append(ALPHABET[digit])
    return f"{prefix}_" + "".join(characters)


def id_prefix(value: str) -> str | None:
    """The prefix of a well-formed id, or None for anything that is not one of ours."""
    prefix, sep, rest = value.partition("_")
    if not sep or prefix not in PREFIXES or len(rest) != RANDOM_LENGTH:
        return None
    if not all(c in ALPHABET for c in rest):
        return None
    return prefix


def is_id_of(value: str, prefix: str) -> bool:
    return id_prefix(value) == prefix
