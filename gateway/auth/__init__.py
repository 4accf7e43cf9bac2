"""Who is calling and what they may do: API keys, scopes, per-field access, tenancy checks, rate limits, and the watch that ends subscriptions whose key is refused.

Outside this wing, code imports from ``gateway.auth`` only: the names below are the wing's
public surface, and its modules are private (``tests/test_architecture.py`` holds every caller
to it).
"""

from gateway.auth.access import ACT_AS_HEADER, act_as
from gateway.auth.key_watch import KeyWatch, Watch
from gateway.auth.keys import (
    Principal,
    Refusal,
    authenticate,
    create_child_key,
    find_key,
    list_keys,
    mint_key,
    parse_bearer,
    refusal_of,
    revoke_key,
    rotate_key,
    select_keys_with_organizations,
    set_key_disabled,
    touch_last_used,
)
from gateway.auth.rate_limit import CostRateLimiter, RedisCostRateLimiter
from gateway.auth.scopes import has_scope
from gateway.auth.tenancy import find_owned, find_owned_many, require_owned

__all__ = [
    "act_as",
    "ACT_AS_HEADER",
    "authenticate",
    "CostRateLimiter",
    "RedisCostRateLimiter",
    "create_child_key",
    "find_key",
    "find_owned",
    "find_owned_many",
    "has_scope",
    "KeyWatch",
    "list_keys",
    "mint_key",
    "parse_bearer",
    "Principal",
    "Refusal",
    "refusal_of",
    "require_owned",
    "revoke_key",
    "rotate_key",
    "select_keys_with_organizations",
    "set_key_disabled",
    "touch_last_used",
    "Watch",
]
