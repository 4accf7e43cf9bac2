"""The SSRF guard: address classes, URL checks, connect-time checks (DNS rebinding), redirects.

Servers bind 127.0.0.1 only; host names resolve through a fixed table, never real DNS.
"""

import ipaddress

import pytest

from gateway.outbound.url_guard import UnsafeURL, fetch, guarded_client, is_public_address, validate_url
from tests.http_peer import LoopbackNetwork, Reply, fixed_resolver, scripted_server

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
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"]


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
