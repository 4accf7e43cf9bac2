"""The shared provider client keeps no cookies.

One httpx client carries every provider call of every organization and account. httpx keeps the
cookies each response sets and sends them with later requests to the same host, so a session
cookie a platform set in its answer to one account's call would ride along with another
account's, another organization's even: the platforms' APIs authenticate with tokens, never
with a cookie the gateway should have kept. Keeping them is also a cost on every call: httpx
hands each response to ``http.cookiejar``, which builds an ``email.message.Message`` of all its
headers to look for ``Set-Cookie`` (about a twentieth of the engine's CPU per post, measured by
``bench/publish_overhead.py``). A request that needs a cookie sends it itself (a ``Cookie`` header).
"""

from __future__ import annotations

import httpx


class NoCookies(httpx.Cookies):
    """A client's cookie store that keeps nothing a response sets."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Set-Cookie is not kept (a shared client would send it with other accounts' requests)."""


def without_cookies(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """``client``, made to keep no cookie; the public ``cookies`` setter would copy into a keeping store."""
    client._cookies = NoCookies()
    return client
