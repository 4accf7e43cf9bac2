"""The provider client shared by every account keeps no cookie a platform's answer sets."""

from __future__ import annotations

import httpx

from gateway.runtime import Runtime


def platform(seen: list[httpx.Request]) -> httpx.MockTransport:
    """A platform that sets a session cookie on every answer, and records what it was sent."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"Set-Cookie": "session=account-a; Path=/"}, json={"ok": True})

    return httpx.MockTransport(answer)


async def test_a_cookie_set_for_one_account_never_rides_along_with_the_next_call(settings):
    seen: list[httpx.Request] = []
    runtime = Runtime(settings, http_transport=platform(seen))
    try:
        await runtime.http.post("https://api.platform.example/posts", headers={"Authorization": "Bearer token-of-a"})
        await runtime.http.post("https://api.platform.example/posts", headers={"Authorization": "Bearer token-of-b"})
        assert [request.headers.get("cookie") for request in seen] == [None, None]
        assert not runtime.http.cookies
        # a call that needs a cookie still sends its own
        await runtime.http.get("https://api.platform.example/me", headers={"Cookie": "consent=yes"})
        assert seen[-1].headers["cookie"] == "consent=yes"
    finally:
        await runtime.http.aclose()
