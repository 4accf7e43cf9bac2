"""The plumbing of calls to platforms: the SSRF guard, the connection pool and its idle checks, the shared client's refusal of cookies, and the garbage-collector policy that keeps their latency flat.

Outside this wing, code imports from ``gateway.outbound`` only: the names below are the wing's
public surface, and its modules are private (``tests/test_architecture.py`` holds every caller
to it).
"""

from gateway.outbound.cookies import without_cookies
from gateway.outbound.gc_policy import settle_after_startup
from gateway.outbound.url_guard import GuardedNetworkBackend, GuardedTransport, UnsafeURL, fetch, guarded_client, validate_url

__all__ = [
    "fetch",
    "guarded_client",
    "GuardedNetworkBackend",
    "GuardedTransport",
    "settle_after_startup",
    "UnsafeURL",
    "validate_url",
    "without_cookies",
]
