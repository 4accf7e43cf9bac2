"""OAuth 2.0 token requests (RFC 6749 §4.1.3 and §6), the same for every OAuth platform.

Trading an authorization code and refreshing a token are one form POST to the platform's token
endpoint and one JSON answer; platforms differ only in the form's fields and in how the client
authenticates (X: HTTP Basic for confidential clients; LinkedIn: ``client_secret`` in the form).
A provider builds the form, and ``request_tokens`` sends it and turns the answer into a
``TokenSet`` — or into the SDK's errors, so the engine can act without knowing the platform:

- a refused refresh (any 4xx: ``invalid_grant``, or X's ``invalid_request`` for a dead refresh
  token) is ``AuthExpired`` — the account must be connected again;
- a refused code exchange is ``Rejected`` with the platform's ``error`` word (the code was used,
  expired, or the redirect URI does not match) — there is no account yet to mark expired;
- 429 is ``RateLimited``, 5xx and network trouble ``TransientError``.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt

from providers.calls import TokenSet
from providers.context import ProviderContext
from providers.errors import AuthExpired, Rejected
from providers.http import json_object, raise_for_response, send

# Platforms separate granted scopes with spaces (RFC 6749 §3.3) or, like LinkedIn, with commas.
_SCOPE_SEPARATOR = re.compile(r"[\s,]+")


def basic_client_auth(client_id: str, client_secret: str) -> str:
    """The ``Authorization`` header value of HTTP Basic client authentication (RFC 6749 §2.3.1)."""
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")


def token_set_from(body: Mapping[str, Any], ctx: ProviderContext, extra: Mapping[str, str] | None = None) -> TokenSet:
    """A ``TokenSet`` from a token endpoint's JSON answer (RFC 6749 §5.1), expiry measured from ``ctx.now()``.

    ``refresh_token`` stays None when the platform sent none, so the gateway keeps the one it has.
    ``refresh_token_expires_in`` (LinkedIn) becomes ``extra["refresh_token_expires_at"]``.
    """
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise Rejected("INVALID_TOKEN_RESPONSE", "the token endpoint answered without an access_token")
    now = ctx.now()
    values = dict(extra or {})
    refresh_ttl = body.get("refresh_token_expires_in")
    if isinstance(refresh_ttl, int | float):
        values["refresh_token_expires_at"] = (now + timedelta(seconds=refresh_ttl)).isoformat()
    expires_in = body.get("expires_in")
    token_type = str(body.get("token_type") or "Bearer")
    return TokenSet(
        access_token=access_token,
        refresh_token=body.get("refresh_token") or None,
        expires_at=now + timedelta(seconds=expires_in) if isinstance(expires_in, int | float) else None,
        scopes=tuple(s for s in _SCOPE_SEPARATOR.split(str(body.get("scope") or "")) if s),
        token_type="Bearer" if token_type.lower() == "bearer" else token_type,
        extra=values,
    )


def _oauth_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """The RFC 6749 §5.2 ``error`` word (upper-cased) and ``error_description``, when the body has them."""
    body = json_object(response) or {}
    error = body.get("error")
    description = body.get("error_description") or body.get("message")
    return (error.upper() if isinstance(error, str) else None), (str(description) if description else None)


async def request_tokens(
    ctx: ProviderContext,
    token_url: str,
    form: Mapping[str, str],
    *,
    refreshing: bool,
    basic_auth: tuple[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> TokenSet:
    """POST ``form`` to ``token_url`` and return the tokens it grants.

    ``refreshing`` says whether this is a refresh (a refusal means ``AuthExpired``) or a code
    exchange (a refusal is ``Rejected``). ``basic_auth`` is ``(client_id, client_secret)`` for
    platforms that authenticate confidential clients with HTTP Basic. ``extra`` is carried into
    ``TokenSet.extra`` (and so into the account's credentials).
    """
    headers = {"Accept": "application/json"}
    if basic_auth is not None:
        headers["Authorization"] = basic_client_auth(*basic_auth)
    response = await send(ctx, "POST", token_url, data=dict(form), headers=headers)
    if response.is_success:
        return token_set_from(json_object(response) or {}, ctx, extra)
    error, description = _oauth_error(response)
    status = response.status_code
    if 400 <= status < 500 and status != 429:
        message = description or error or f"the token endpoint refused the request ({status})"
        if refreshing:
            raise AuthExpired(f"the platform refused the refresh token: {message}", code=error or "REFRESH_REFUSED", http_status=status)
        raise Rejected(error or f"HTTP_{status}", message, http_status=status)
    raise_for_response(response, code=error, message=description)
    raise AssertionError("unreachable: raise_for_response raises for every non-2xx status")


def es256_client_assertion(*, issuer: str, subject: str, audience: str, key_id: str, private_key_pem: str, now: datetime,
                           lifetime: timedelta) -> str:
    """A client assertion JWT signed with ES256 (RFC 7523), for platforms whose OAuth client secret
    is one (Apple Search Ads). Signed with PyJWT; a key that is not a P-256 private key in PEM is
    ``Rejected("PRIVATE_KEY_INVALID")``, and the key never appears in the message."""
    claims = {"sub": subject, "iss": issuer, "aud": audience, "iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp())}
    try:
        return jwt.encode(claims, private_key_pem, algorithm="ES256", headers={"kid": key_id})
    except (ValueError, TypeError, jwt.PyJWTError):
        raise Rejected("PRIVATE_KEY_INVALID", "the private key is not an ES256 (P-256) private key in PEM form") from None


def code_form(*, code: str, redirect_uri: str, client_id: str, client_secret: str) -> dict[str, str]:
    """The authorization-code grant's form with the client's id and secret in it (RFC 6749 §4.1.3, §2.3.1)."""
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": client_id, "client_secret": client_secret}


def with_extra(tokens: TokenSet, **extra: str) -> TokenSet:
    """``tokens`` with more for the account's credentials to keep: whose account they are (a page, a location, a profile)."""
    return dataclasses.replace(tokens, extra={**tokens.extra, **extra})


async def refresh_tokens(
    ctx: ProviderContext, token_url: str, *, client_id: str, client_secret: str, platform: str, keep: tuple[str, ...] = ()
) -> TokenSet:
    """Refresh with the refresh token and the client's id and secret in the form (RFC 6749 §6).

    ``keep`` names credentials a refresh carries over (the tokens change, the account does not).
    No refresh token at all is ``AuthExpired``: the account must be connected again.
    """
    refresh = ctx.credential("refresh_token")
    if not refresh:
        raise AuthExpired(f"{platform} issued no refresh token for this account: connect it again", code="NO_REFRESH_TOKEN")
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": client_id, "client_secret": client_secret}
    return await request_tokens(ctx, token_url, form, refreshing=True, extra={name: ctx.credential(name) or "" for name in keep})
