"""providers.oauth: one token request, answered the RFC 6749 way or refused in the SDK's errors."""

import asyncio

from providers import AuthExpired, RateLimited, Rejected, TransientError
from providers.oauth import basic_client_auth, request_tokens
from providers.testing import call_scripted, reply
from tests.strict_provider import StrictProvider

provider = StrictProvider()
URL = "https://auth.example/token"


def token_request(steps, refreshing=False):
    return asyncio.run(call_scripted(provider, steps, lambda ctx: request_tokens(ctx, URL, {"grant_type": "x"}, refreshing=refreshing, extra={"kept": "1"})))


def test_basic_client_auth_is_base64_of_id_colon_secret():
    assert basic_client_auth("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


def test_a_minimal_answer_leaves_expiry_and_refresh_token_unknown():
    outcome = token_request([reply(200, json={"access_token": "a"})])
    tokens = outcome.result
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_at, tokens.scopes, tokens.token_type) == ("a", None, None, (), "Bearer")
    assert tokens.extra == {"kept": "1"}
    assert outcome.sent[0].headers["accept"] == "application/json"


def test_an_answer_without_an_access_token_is_rejected():
    for answer in (reply(200, json={"token_type": "bearer"}), reply(200, text="<html>ok</html>"), reply(200, json=["a"])):
        outcome = token_request([answer])
        assert isinstance(outcome.error, Rejected) and outcome.error.code == "INVALID_TOKEN_RESPONSE"


def test_rate_limits_and_server_errors_keep_their_meaning_for_both_grants():
    for refreshing in (False, True):
        limited = token_request([reply(429, json={"error": "slow_down"}, headers={"Retry-After": "20"})], refreshing)
        assert isinstance(limited.error, RateLimited) and limited.error.retry_after == 20
        down = token_request([reply(503, text="")], refreshing)
        assert isinstance(down.error, TransientError)


def test_a_refusal_is_auth_expired_when_refreshing_and_rejected_when_exchanging():
    answer = reply(400, json={"error": "invalid_grant", "error_description": "expired"})
    refreshed = token_request([answer], refreshing=True)
    assert isinstance(refreshed.error, AuthExpired) and refreshed.error.code == "INVALID_GRANT"
    exchanged = token_request([answer], refreshing=False)
    assert isinstance(exchanged.error, Rejected) and (exchanged.error.code, exchanged.error.message) == ("INVALID_GRANT", "expired")
    plain = token_request([reply(401, text="nope")], refreshing=False)
    assert isinstance(plain.error, Rejected) and plain.error.code == "HTTP_401"
