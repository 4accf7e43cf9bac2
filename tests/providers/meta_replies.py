"""Meta's real Graph API answers, shared by the Facebook and Instagram provider tests.

Error bodies as Meta sends them (Graph API "Handling Errors", the Instagram Platform "Error
Codes" table): a 400 with ``{"error": {message, type, code, error_subcode, is_transient,
error_user_title, error_user_msg, fbtrace_id}}``.
"""

from __future__ import annotations

import json
import urllib.parse

import httpx

from providers import AuthExpired, RateLimited, Rejected, TransientError
from providers.testing import ErrorCase, reply


def meta_error(code: int, message: str, *, subcode: int | None = None, status: int = 400, headers=None, **more):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGhIjK", **more}
    if subcode is not None:
        error["error_subcode"] = subcode
    return reply(status, json={"error": error}, headers=headers)


BUC_USAGE = {"X-Business-Use-Case-Usage": json.dumps({"101": [{"type": "pages", "call_count": 100, "total_cputime": 25, "total_time": 25, "estimated_time_to_regain_access": 5}]})}
INVALID_METRIC = meta_error(100, "(#100) The value must be a valid insights metric")

TOKEN_EXPIRED = meta_error(
    190, "Error validating access token: Session has expired on Thursday, 15-Jan-26 04:00:00 PST. The current time is Thursday, 15-Jan-26 04:12:15 PST.",
    subcode=463,
)
GRAPH_ERRORS = [
    ErrorCase("190 session expired (463)", [TOKEN_EXPIRED], AuthExpired, code="META_190_463"),
    ErrorCase("190 password changed (460)", [meta_error(190, "Error validating access token: The session has been invalidated because the user changed their password.", subcode=460)], AuthExpired, code="META_190_460"),
    ErrorCase("4 app request limit", [meta_error(4, "(#4) Application request limit reached", is_transient=True)], RateLimited, code="META_4"),
    ErrorCase("17 user request limit", [meta_error(17, "(#17) User request limit reached", subcode=2446079)], RateLimited, code="META_17_2446079"),
    ErrorCase("32 Page request limit, BUC usage says 5 minutes", [meta_error(32, "(#32) Page request limit reached", headers=BUC_USAGE)], RateLimited, code="META_32", retry_after=300),
    ErrorCase("613 calls exceeded the rate limit", [meta_error(613, "(#613) Calls to this api have exceeded the rate limit.")], RateLimited, code="META_613"),
    ErrorCase("80001 Page BUC limit", [meta_error(80001, "There have been too many calls to this Page account. Wait a bit and try again.", headers=BUC_USAGE)], RateLimited, retry_after=300),
    ErrorCase(
        "368 blocked for abuse",
        [meta_error(368, "The action attempted has been deemed abusive or is otherwise disallowed", subcode=1390008,
                    error_user_title="You Can't Use This Feature Right Now", error_user_msg="You're temporarily blocked from posting.")],
        Rejected, code="META_368_1390008",
    ),
    ErrorCase("100 invalid parameter", [meta_error(100, "(#100) Invalid parameter")], Rejected, code="META_100"),
    ErrorCase("200 permission missing", [meta_error(200, "(#200) The user hasn't authorized the application to perform this action")], Rejected, code="META_200"),
    ErrorCase("2 temporary, is_transient", [meta_error(2, "An unexpected error has occurred. Please retry your request later.", status=500, is_transient=True)], TransientError, code="META_2"),
    ErrorCase("1 unknown error", [meta_error(1, "An unknown error occurred", subcode=99)], TransientError, code="META_1_99"),
    ErrorCase("502 from a proxy", [reply(502, text="<html>Bad Gateway</html>")], TransientError),
]


def form(request: httpx.Request) -> dict[str, str]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return dict(urllib.parse.parse_qsl(request.content.decode()))


def query(request: httpx.Request) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(request.url.query.decode()))


def where(request: httpx.Request) -> tuple[str, str]:
    """(method, URL without its query)."""
    return request.method, str(request.url.copy_with(query=None))


def bearer(request: httpx.Request, token: str) -> None:
    assert request.headers["authorization"] == f"Bearer {token}"
    assert token not in str(request.url), "the token travels in the header, never in the URL"
