"""The SSRF guard: address classes, URL checks, connect-time checks (DNS rebinding), redirects.

Servers bind 127.0.0.1 only; host names resolve through a fixed table, never real DNS.
"""

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import httpcore
import httpx
import pytest

from gateway.outbound.url_guard import (
    DEFAULT_LIMITS,
    MAX_URL_LENGTH,
    GuardedNetworkBackend,
    UnsafeURL,
    check_address,
    fetch,
    guarded_client,
    is_public_address,
    system_resolver,
    validate_url,
)
from tests.http_peer import LoopbackNetwork, Reply, fixed_resolver, scripted_server


def teredo(server: str, client: str) -> str:
    """The Teredo (2001::/32) address of ``client`` behind relay ``server`` (client bits inverted)."""
    bits = (0x20010000 << 96) | (int(ipaddress.IPv4Address(server)) << 64) | (int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF)
    return str(ipaddress.IPv6Address(bits))

NOT_PUBLIC = [
    "127.0.0.1",
    "127.255.0.9",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",  # multicast, which ipaddress counts as "global"
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata service
    "64:ff9b::7f00:1",  # NAT64 of loopback
    "64:ff9b:1::808:808",  # the local-use NAT64 prefix, even of a public address
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    teredo("65.54.227.120", "10.0.0.1"),  # Teredo of a private client
    teredo("65.54.227.120", "8.8.8.8"),  # Teredo at all: ipaddress counts 2001::/23 as private
    "::ffff:8.8.8.8",  # mapped: a dual-stack socket detour, never a real destination
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8: the translator reaches that public host
    "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_private_and_special_addresses_are_not_public(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_public(address):
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1/x.png", "URL_NOT_ALLOWED"),
        ("http://10.0.0.8:8080/", "URL_NOT_ALLOWED"),
        ("http://169.254.169.254/latest/meta-data/", "URL_NOT_ALLOWED"),
        ("http://[::1]/", "URL_NOT_ALLOWED"),
        ("http://[fc00::1]/", "URL_NOT_ALLOWED"),
        ("http://[::ffff:127.0.0.1]/", "URL_NOT_ALLOWED"),
        ("file:///etc/passwd", "URL_SCHEME_NOT_ALLOWED"),
        ("ftp://example.com/a.png", "URL_SCHEME_NOT_ALLOWED"),
        ("gopher://example.com/", "URL_SCHEME_NOT_ALLOWED"),
        ("javascript:alert(1)", "URL_SCHEME_NOT_ALLOWED"),
        ("example.com/a.png", "URL_SCHEME_NOT_ALLOWED"),
        ("http:///a.png", "URL_INVALID"),
        ("http://[::1/", "URL_INVALID"),  # httpx's InvalidURL, turned into a refusal with a code
        ("http://user:secret@example.com/a.png", "URL_INVALID"),
        ("https://example.com/" + "a" * 3000, "URL_TOO_LONG"),
    ],
)
def test_validate_url_refuses(url, code):
    with pytest.raises(UnsafeURL) as refused:
        validate_url(url, allow_private=False)
    assert refused.value.code == code


def test_validate_url_allows_private_literals_only_when_configured():
    assert validate_url("http://127.0.0.1:9/x", allow_private=True).host == "127.0.0.1"
    assert validate_url("https://example.com/a.png", allow_private=False).host == "example.com"
    with pytest.raises(UnsafeURL):
        validate_url("file:///etc/passwd", allow_private=True)


async def _get(client, url, *, allow_private=False):
    async with fetch(client, url, allow_private=allow_private) as response:
        return response.status_code, await response.aread()


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time():
    """DNS rebinding: the name passes every check up front; the address it resolves to does not."""
    with scripted_server() as server:
        server.routes["/secret"] = Reply(200, {}, b"internal")
        client = guarded_client(allow_private=False, resolver=fixed_resolver({"rebind.test": ["127.0.0.1"]}))
        async with client:
            with pytest.raises(UnsafeURL) as refused:
                await _get(client, f"http://rebind.test:{server.port}/secret")
        assert refused.value.code == "URL_NOT_ALLOWED"
        assert server.requested == []


async def test_a_name_with_any_private_address_is_refused():
    network = LoopbackNetwork()
    resolver = fixed_resolver({"mixed.test": ["93.184.216.34", "10.0.0.1"]})
    async with guarded_client(allow_private=False, resolver=resolver, network_backend=network) as client:
        with pytest.raises(UnsafeURL):
            await _get(client, "http://mixed.test/")
    assert network.connected_to == []


async def test_the_checked_address_is_the_one_connected_to():
    with scripted_server() as server:
        server.routes["/ok"] = Reply(200, {"Content-Type": "text/plain"}, b"hello")
        network = LoopbackNetwork()
        resolver = fixed_resolver({"public.test": ["93.184.216.34"]})
        async with guarded_client(allow_private=False, resolver=resolver, network_backend=network) as client:
            assert await _get(client, f"http://public.test:{server.port}/ok") == (200, b"hello")
        assert network.connected_to == ["93.184.216.34"]


@pytest.mark.parametrize(
    ("location", "code"),
    [
        ("http://169.254.169.254/latest/meta-data/", "URL_NOT_ALLOWED"),
        ("http://[::ffff:10.0.0.1]/", "URL_NOT_ALLOWED"),
        ("http://internal.test:{port}/secret", "URL_NOT_ALLOWED"),  # a name that resolves privately
        ("file:///etc/passwd", "URL_SCHEME_NOT_ALLOWED"),
    ],
)
async def test_a_redirect_to_a_private_address_is_refused(location, code):
    with scripted_server() as server:
        server.routes["/start"] = Reply(302, {"Location": location.format(port=server.port)})
        server.routes["/secret"] = Reply(200, {}, b"internal")
        network = LoopbackNetwork()
        resolver = fixed_resolver({"public.test": ["93.184.216.34"], "internal.test": ["10.0.0.7"]})
        async with guarded_client(allow_private=False, resolver=resolver, network_backend=network) as client:
            with pytest.raises(UnsafeURL) as refused:
                await _get(client, f"http://public.test:{server.port}/start")
        assert refused.value.code == code
        assert server.requested == ["/start"]
        assert network.connected_to == ["93.184.216.34"]


async def test_redirects_are_followed_a_few_times_only():
    with scripted_server() as server:
        server.routes["/a"] = Reply(302, {"Location": "/b"})
        server.routes["/b"] = Reply(301, {"Location": "/c"})
        server.routes["/c"] = Reply(200, {}, b"done")
        server.routes["/loop"] = Reply(302, {"Location": "/loop"})
        async with guarded_client(allow_private=True) as client:
            assert await _get(client, server.url("/a"), allow_private=True) == (200, b"done")
            with pytest.raises(UnsafeURL) as refused:
                await _get(client, server.url("/loop"), allow_private=True)
        assert refused.value.code == "TOO_MANY_REDIRECTS"
        assert server.requested.count("/loop") == 6  # the first request and five redirects


async def test_loopback_is_reachable_when_private_urls_are_allowed():
    with scripted_server() as server:
        server.routes["/x"] = Reply(200, {}, b"local")
        async with guarded_client(allow_private=True) as client:
            assert await _get(client, server.url("/x"), allow_private=True) == (200, b"local")
        async with guarded_client(allow_private=False) as client:
            with pytest.raises(UnsafeURL):
                await _get(client, server.url("/x"))
        assert server.requested == ["/x"]


def test_the_length_limit_is_2048_characters_exactly():
    prefix = "https://example.com/"
    at_limit = prefix + "a" * (MAX_URL_LENGTH - len(prefix))
    assert MAX_URL_LENGTH == 2048 and len(at_limit) == 2048
    assert validate_url(at_limit, allow_private=False).host == "example.com"
    with pytest.raises(UnsafeURL) as refused:
        validate_url(at_limit + "a", allow_private=False)
    assert (refused.value.code, refused.value.message) == ("URL_TOO_LONG", "The URL is longer than 2048 characters.")


def test_refusals_say_why_in_words():
    with pytest.raises(UnsafeURL) as refused:
        validate_url("http://10.0.0.1/", allow_private=False)
    assert str(refused.value) == refused.value.message == "The URL points to a private, loopback or reserved address."


async def test_a_nat64_address_of_a_public_host_is_connected_to_as_given():
    with scripted_server() as server:
        server.routes["/ok"] = Reply(200, {}, b"via nat64")
        network = LoopbackNetwork()
        resolver = fixed_resolver({"v4only.test": ["64:ff9b::5db8:d822"]})
        async with guarded_client(allow_private=False, resolver=resolver, network_backend=network) as client:
            assert await _get(client, f"http://v4only.test:{server.port}/ok") == (200, b"via nat64")
        assert network.connected_to == ["64:ff9b::5db8:d822"]


@pytest.mark.parametrize("allow_private", [True, False], ids=["private-allowed", "private-refused"])
async def test_the_system_resolver_is_used_when_no_resolver_is_given(allow_private):
    assert "127.0.0.1" in await system_resolver("localhost", 80)
    with scripted_server() as server:
        server.routes["/x"] = Reply(200, {}, b"resolved")
        async with guarded_client(allow_private=allow_private) as client:
            if allow_private:
                assert await _get(client, f"http://localhost:{server.port}/x", allow_private=True) == (200, b"resolved")
                assert server.requested == ["/x"]
            else:
                with pytest.raises(UnsafeURL) as refused:
                    await _get(client, f"http://localhost:{server.port}/x")
                assert refused.value.code == "URL_NOT_ALLOWED"
                assert server.requested == []


async def test_a_name_the_system_cannot_resolve_is_a_connect_error():
    with pytest.raises(httpcore.ConnectError, match="could not resolve host"):
        await system_resolver("no-such-host.invalid", 80)


async def test_a_name_without_addresses_is_a_connect_error():
    async with guarded_client(allow_private=False, resolver=fixed_resolver({"empty.test": []})) as client:
        with pytest.raises(httpx.ConnectError, match="empty.test has no addresses"):
            await _get(client, "http://empty.test/")


@contextmanager
def silent_peer() -> Iterator[int]:
    """A loopback port that accepts connections and never answers: only a timeout ends a request."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


async def test_a_peer_that_never_answers_ends_in_the_clients_read_timeout():
    """The timeout given is the one applied: without it the request would wait until the bound."""
    with silent_peer() as port:
        async with guarded_client(allow_private=True, timeout=httpx.Timeout(5.0, read=0.2)) as client:
            with anyio.fail_after(4):  # a bound for a broken guard, not a measurement
                with pytest.raises(httpx.ReadTimeout):
                    await _get(client, f"http://127.0.0.1:{port}/", allow_private=True)


def test_the_default_timeouts_and_pool_limits():
    client = guarded_client(allow_private=False)
    assert client.timeout == httpx.Timeout(30.0, connect=10.0)
    pool = client._transport._pool
    assert (pool._max_connections, pool._max_keepalive_connections) == (20, 5)
    assert (DEFAULT_LIMITS.max_connections, DEFAULT_LIMITS.max_keepalive_connections) == (20, 5)
    assert pool._keepalive_expiry == DEFAULT_LIMITS.keepalive_expiry
    assert pool._network_backend.allow_private is False


class RecordingNetwork(LoopbackNetwork):
    """Loopback, remembering the connect timeout the guard hands down."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
        self.timeouts.append(timeout)
        return await super().connect_tcp(host, port, timeout=timeout)


async def test_the_connect_timeout_reaches_the_socket():
    with scripted_server() as server:
        server.routes["/x"] = Reply(200, {}, b"ok")
        network = RecordingNetwork()
        resolver = fixed_resolver({"public.test": ["93.184.216.34"]})
        timeout = httpx.Timeout(9.0, connect=3.5)
        async with guarded_client(allow_private=False, resolver=resolver, network_backend=network, timeout=timeout) as client:
            assert await _get(client, f"http://public.test:{server.port}/x") == (200, b"ok")
        assert network.timeouts == [3.5]


async def test_every_address_is_tried_before_giving_up():
    """A name with two public addresses: the first refuses, the second is connected to."""

    class FirstRefuses(LoopbackNetwork):
        async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
            if not self.connected_to:
                self.connected_to.append(host)
                raise httpcore.ConnectError("refused")
            return await super().connect_tcp(host, port, timeout=timeout)

    with scripted_server() as server:
        server.routes["/x"] = Reply(200, {}, b"second")
        network = FirstRefuses()
        resolver = fixed_resolver({"two.test": ["93.184.216.34", "8.8.8.8"]})
        async with guarded_client(allow_private=False, resolver=resolver, network_backend=network) as client:
            assert await _get(client, f"http://two.test:{server.port}/x") == (200, b"second")
        assert network.connected_to == ["93.184.216.34", "8.8.8.8"]
        network = FirstRefuses()
        async with guarded_client(allow_private=False, resolver=fixed_resolver({"one.test": ["8.8.8.8"]}), network_backend=network) as client:
            with pytest.raises(httpx.ConnectError, match="refused"):
                await _get(client, f"http://one.test:{server.port}/x")


async def test_unix_sockets_are_refused():
    backend = GuardedNetworkBackend(allow_private=True)
    with pytest.raises(UnsafeURL) as refused:
        await backend.connect_unix_socket("/var/run/docker.sock")
    assert refused.value.code == "URL_NOT_ALLOWED"
    assert refused.value.message == "Unix sockets are never reachable through a user-supplied URL."


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://[::1/", "The URL is not valid."),
        ("ftp://example.com/", "Only http and https URLs are allowed."),
        ("http:///a.png", "The URL has no host."),
        ("https://user:pw@example.com/", "URLs with credentials are not accepted."),
        ("http://127.0.0.1/", "The URL points to a private, loopback or reserved address."),
    ],
    ids=["invalid", "scheme", "no-host", "credentials", "private"],
)
def test_each_refusal_says_why_in_words(url, message):
    """The message reaches the user as the error's text: it must stay the sentence written."""
    with pytest.raises(UnsafeURL) as refused:
        validate_url(url, allow_private=False)
    assert refused.value.message == message == str(refused.value)


@pytest.mark.parametrize("resolved", ["fe80::1%eth0", "fe80::1%eth0%1"])
def test_a_zone_id_is_dropped_before_the_check(resolved):
    assert check_address(resolved, allow_private=True) == ipaddress.IPv6Address("fe80::1")
    assert str(check_address(resolved, allow_private=True)) == "fe80::1"
    with pytest.raises(UnsafeURL):
        check_address(resolved, allow_private=False)


def test_the_client_neither_follows_redirects_nor_reads_proxies_from_the_environment(monkeypatch):
    """Redirects are followed by ``fetch``, hop by hop; a proxy would open connections the guard never sees."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    client = guarded_client(allow_private=False)
    assert client.follow_redirects is False
    assert client.trust_env is False
    assert client._mounts == {}


def test_the_pool_trusts_the_certificate_authorities_the_system_names(tmp_path, monkeypatch):
    """SSL_CERT_FILE (a private CA for a self-hosted instance) is honoured; nothing else of the environment."""
    from tests.tls import make_certificates

    files = make_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(files.ca_file))
    pool = guarded_client(allow_private=False)._transport._pool
    issuers = [dict(pair[0] for pair in cert["subject"]) for cert in pool._ssl_context.get_ca_certs()]
    assert {"commonName": "socialgate test CA"} in issuers


class RecordingInner(LoopbackNetwork):
    """Remembers every argument the guard hands down to the real network."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict] = []
        self.slept: list[float] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
        self.calls.append({"host": host, "port": port, "timeout": timeout, "local_address": local_address, "socket_options": socket_options})
        return await super().connect_tcp(host, port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_the_backend_hands_every_connection_argument_down():
    asked: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["93.184.216.34"]

    inner = RecordingInner()
    backend = GuardedNetworkBackend(allow_private=False, resolver=resolver, inner=inner)
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    with scripted_server() as server:
        stream = await backend.connect_tcp("public.test", server.port, timeout=4.0, local_address="127.0.0.1", socket_options=options)
        await stream.aclose()
    assert asked == [("public.test", server.port)]
    assert inner.calls == [
        {"host": "93.184.216.34", "port": server.port, "timeout": 4.0, "local_address": "127.0.0.1", "socket_options": options}
    ]
    await backend.sleep(0.25)
    assert inner.slept == [0.25]
