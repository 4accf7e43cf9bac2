"""The SSRF guard for every outbound URL a user supplies (media to fetch, webhook endpoints).

A URL a caller hands us must not become a way to reach what only the gateway can reach: the
cloud metadata service at 169.254.169.254, a database on 10.0.0.5, an admin port on loopback.
Checking the host name up front is not enough — DNS can answer "public" to the check and
"private" to the connection a moment later (rebinding), and a public server can redirect to a
private one. So the check lives where the socket is opened: ``GuardedNetworkBackend`` resolves
the host itself, refuses the connection unless every address is public, and connects to the very
address it checked. Redirects are followed by hand, each hop re-validated, and each hop's
connection goes through the same backend.

``allow_private_urls`` (settings) lifts the address check for tests and single-machine set-ups
that talk to local peers; the scheme check always applies.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpcore
import httpx

from gateway.outbound.connection_pool import pool_class
from gateway.outbound.idle_check import IdleCheckedStream

ALLOWED_SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2048
MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=5)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses to try, as strings (the system resolver unless a test swaps it).
Resolver = Callable[[str, int], Awaitable[list[str]]]

# The well-known NAT64 prefix (RFC 6052): a DNS64 resolver answers with it for an IPv4-only host,
# and the translator connects to the IPv4 address in the last 32 bits. Such an address is that
# IPv4 host, so it is judged as that host: public when it is public (``ipaddress`` calls the whole
# prefix reserved, which would cut IPv6-only deployments off every IPv4-only platform), refused
# when it embeds a private one. The local-use prefix 64:ff9b:1::/48 stays refused: a site's own
# translator may reach what the public one cannot.
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeURL(Exception):
    """A URL the guard refuses, with a stable code the caller turns into a user error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo), if any.

    ``ipaddress`` already counts mapped and Teredo addresses as private; they are checked here as
    well so that a Python whose address tables change cannot let ``::ffff:10.0.0.1`` through.
    """
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address; the server half is Teredo's relay
    return None


def is_public_address(address: IPAddress) -> bool:
    """Whether a connection to this address leaves for the public internet.

    ``is_global`` alone misses multicast (it counts 224.0.0.0/4 as global), so every class is
    checked by name; an IPv6 address embedding an IPv4 one must pass for that IPv4 address too,
    and a NAT64 address is the IPv4 host it embeds.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address in NAT64_PREFIX:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public_address(embedded):
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def check_address(address: str, *, allow_private: bool) -> IPAddress:
    """Parse a resolved address and refuse it unless it is public (or private ones are allowed)."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if not allow_private and not is_public_address(parsed):
        raise UnsafeURL("URL_NOT_ALLOWED", "The URL points to a private, loopback or reserved address.")
    return parsed


def validate_url(url: str | httpx.URL, *, allow_private: bool) -> httpx.URL:
    """Check what can be checked without the network: length, scheme, host, literal addresses.

    The resolved addresses are checked again when connecting; this only refuses early, with a
    clear code, what would be refused anyway.
    """
    text = str(url)
    if len(text) > MAX_URL_LENGTH:
        raise UnsafeURL("URL_TOO_LONG", f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parsed = httpx.URL(text)
    except httpx.InvalidURL:
        raise UnsafeURL("URL_INVALID", "The URL is not valid.") from None
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise UnsafeURL("URL_SCHEME_NOT_ALLOWED", "Only http and https URLs are allowed.")
    if not parsed.host:
        raise UnsafeURL("URL_INVALID", "The URL has no host.")
    if parsed.userinfo:
        # Credentials in a URL end up in logs and stored source URLs; they are refused outright.
        raise UnsafeURL("URL_INVALID", "URLs with credentials are not accepted.")
    try:
        literal = ipaddress.ip_address(parsed.host)
    except ValueError:
        literal = None
    if literal is not None:
        check_address(str(literal), allow_private=allow_private)
    return parsed


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the operating system's resolver."""
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise httpcore.ConnectError(f"could not resolve host: {error}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves, checks, then connects to the checked address.

    Every address the name resolves to must pass: a name answering with one public and one
    private address is refused rather than trusted to pick the public one.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver or system_resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolver(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no addresses")
        checked = [check_address(address, allow_private=self.allow_private) for address in addresses]
        last_error: Exception | None = None
        for address in checked:
            try:
                stream = await self.inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
                return IdleCheckedStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURL("URL_NOT_ALLOWED", "Unix sockets are never reachable through a user-supplied URL.")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its connection pool built on the guarded network backend.

    httpx does not take a network backend as an argument, so the pool it built is replaced by an
    identical one (same TLS context, limits) that connects through the guard. TLS still verifies
    the certificate against the URL's host name: httpcore passes it as the SNI/server name, not
    the address we connected to; the pool's bookkeeping is linear (``connection_pool``). No
    proxy: a proxy would open the connection, not us. The
    certificate authorities are the system's choice, though: SSL_CERT_FILE / SSL_CERT_DIR when set
    (a private CA for a self-hosted instance), certifi's bundle otherwise.
    """

    def __init__(self, backend: GuardedNetworkBackend, limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        super().__init__(trust_env=False, limits=limits)
        self._pool = pool_class()(
            ssl_context=httpx.create_ssl_context(trust_env=True),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def guarded_client(
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
) -> httpx.AsyncClient:
    """An httpx client whose every connection passes the guard. Redirects are left to ``fetch``."""
    backend = GuardedNetworkBackend(allow_private=allow_private, resolver=resolver, inner=network_backend)
    return httpx.AsyncClient(
        transport=GuardedTransport(backend),
        trust_env=False,
        follow_redirects=False,
        timeout=timeout,
    )


@asynccontextmanager
async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    allow_private: bool,
    max_redirects: int = MAX_REDIRECTS,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[httpx.Response]:
    """GET ``url`` as a streamed response, following at most ``max_redirects`` redirects.

    Each hop is validated before it is requested; ``client`` must come from ``guarded_client``
    so each hop's connection is checked too. The response is closed when the block ends.
    """
    current = validate_url(url, allow_private=allow_private)
    for _hop in range(max_redirects + 1):
        response = await client.send(client.build_request("GET", current, headers=headers), stream=True)
        if response.is_redirect:
            await response.aclose()
            current = validate_url(current.join(response.headers["location"]), allow_private=allow_private)
            continue
        try:
            yield response
        finally:
            await response.aclose()
        return
    raise UnsafeURL("TOO_MANY_REDIRECTS", f"The URL redirected more than {max_redirects} times.")
