"""Outbound HTTP safety: SSRF refusals after DNS and on redirects, allowlist, timeouts, size cap.

Receivers are loopback servers (tests/fakes/receiver.py); the resolver is faked so names can
point anywhere without touching DNS.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from tests.fakes.receiver import Receiver, Reply, Request
from ttlp.forward.outbound import Outbound, OutboundError, OutboundRefused
from ttlp.settings import OutboundSettings


def fake_resolver(table: dict[str, list[str]]) -> Callable[[str, int], asyncio.Future[list[str]]]:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OutboundError(f"cannot resolve {host}")
        return table[host]

    return resolve  # type: ignore[return-value]


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., Outbound]]:
    made: list[Outbound] = []

    def factory(allow: tuple[str, ...] = (), **kw: object) -> Outbound:
        resolver = kw.pop("resolver", None)
        settings = OutboundSettings(allowlist=allow, **kw)  # type: ignore[arg-type]
        out = Outbound(settings, resolver=resolver)  # type: ignore[arg-type]
        made.append(out)
        return out

    yield factory
    for out in made:
        await out.aclose()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://10.0.0.1/hook", "private"),
        ("http://192.168.1.20/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[::1]/hook", "loopback"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fc00::5]/", "private"),
        ("http://100.64.0.1/hook", "CGNAT"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://localhost:8080/", "loopback"),
        ("ftp://example.com/x", "http and https"),
        ("http://user:pw@example.com/x", "credentials"),
        ("http:///nohost", "host"),
        ("http://example.com:22/x", "port 22"),
    ],
)
def test_check_url_refuses_non_public_destinations(
    make: Callable[..., Outbound], url: str, reason: str
) -> None:
    with pytest.raises(OutboundRefused) as info:
        make().check_url(url)
    assert reason in info.value.reason


def test_check_url_accepts_public_and_allowlisted_destinations(
    make: Callable[..., Outbound],
) -> None:
    out = make(("127.0.0.1", "10.0.0.0/8", "hooks.internal"))
    out.check_url("https://example.com/hook")
    out.check_url("http://93.184.216.34:8080/x")
    out.check_url("http://127.0.0.1:9/x")
    out.check_url("http://10.1.2.3/x")
    out.check_url("http://hooks.internal:25/x")
    with pytest.raises(OutboundRefused):
        out.check_url("http://192.168.0.1/x")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:{port}/", "http://10.0.0.1/", "http://169.254.169.254/"]
)
async def test_post_refuses_literal_private_addresses(
    make: Callable[..., Outbound], url: str
) -> None:
    async with Receiver() as rx:
        with pytest.raises(OutboundRefused):
            await make().post(url.format(port=rx.port), body=b"{}", headers={})
        assert rx.requests == []


async def test_post_refuses_a_name_resolving_to_a_private_address(
    make: Callable[..., Outbound],
) -> None:
    out = make(resolver=fake_resolver({"evil.example": ["93.184.216.34", "10.0.0.7"]}))
    with pytest.raises(OutboundRefused) as info:
        await out.post("http://evil.example/hook", body=b"{}", headers={})
    assert "10.0.0.7" in info.value.reason


async def test_post_connects_to_the_checked_address_with_the_original_host_header(
    make: Callable[..., Outbound],
) -> None:
    async with Receiver() as rx:
        out = make(("127.0.0.1",), resolver=fake_resolver({"hooks.example": ["127.0.0.1"]}))
        response = await out.post(
            f"http://hooks.example:{rx.port}/in?x=1",
            body=b'{"a":1}',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 200
    assert response.body == b"ok"
    [request] = rx.requests
    assert (request.method, request.path, request.body) == ("POST", "/in?x=1", b'{"a":1}')
    assert request.headers["host"] == f"hooks.example:{rx.port}"
    assert request.headers["content-type"] == "application/json"


async def test_allowlisted_hostname_may_resolve_to_loopback(
    make: Callable[..., Outbound],
) -> None:
    async with Receiver() as rx:
        out = make(("hooks.local",), resolver=fake_resolver({"hooks.local": ["127.0.0.1"]}))
        response = await out.post(f"http://hooks.local:{rx.port}/", body=b"x", headers={})
    assert response.status_code == 200


async def test_redirect_to_a_private_address_is_refused(make: Callable[..., Outbound]) -> None:
    def redirect(_: Request) -> Reply:
        return Reply(307, b"", {"location": "http://10.0.0.1/steal"})

    async with Receiver(redirect) as rx:
        with pytest.raises(OutboundRefused) as info:
            await make(("127.0.0.1",)).post(f"{rx.url}/", body=b"x", headers={})
    assert "10.0.0.1" in info.value.reason
    assert len(rx.requests) == 1


async def test_redirect_to_a_name_resolving_to_loopback_is_refused(
    make: Callable[..., Outbound],
) -> None:
    def redirect(_: Request) -> Reply:
        return Reply(302, b"", {"location": "http://rebind.example/"})

    async with Receiver(redirect) as rx:
        out = make(("127.0.0.1/32",), resolver=fake_resolver({"rebind.example": ["::1"]}))
        with pytest.raises(OutboundRefused) as info:
            await out.post(f"{rx.url}/", body=b"x", headers={})
    assert "loopback" in info.value.reason


async def test_allowed_redirects_are_followed_and_capped(make: Callable[..., Outbound]) -> None:
    def hop(request: Request) -> Reply:
        n = int(request.path.strip("/") or 0)
        if n >= 2:
            return Reply(200, b"final")
        return Reply(308, b"", {"location": f"/{n + 1}"})

    async with Receiver(hop) as rx:
        response = await make(("127.0.0.1",)).post(f"{rx.url}/", body=b"b", headers={})
        assert (response.status_code, response.body) == (200, b"final")
        assert [r.path for r in rx.requests] == ["/", "/1", "/2"]
        assert all(r.body == b"b" for r in rx.requests)  # 308 keeps method and body

    async with Receiver(lambda r: Reply(307, b"", {"location": "/again"})) as loop_rx:
        with pytest.raises(OutboundRefused, match="redirects"):
            await make(("127.0.0.1",)).post(f"{loop_rx.url}/", body=b"b", headers={})
        assert len(loop_rx.requests) == 4  # the first request and 3 hops


async def test_oversized_response_is_truncated_at_the_cap(make: Callable[..., Outbound]) -> None:
    async with Receiver(lambda r: Reply(200, b"x" * 100_000)) as rx:
        response = await make(("127.0.0.1",), max_response_bytes=1000).post(
            rx.url, body=b"", headers={}
        )
    assert response.status_code == 200
    assert response.body == b"x" * 1000
    assert response.truncated


async def test_read_timeout_raises_outbound_error(make: Callable[..., Outbound]) -> None:
    async def slow(_: Request) -> Reply:
        await asyncio.sleep(5)
        return Reply()

    async with Receiver(slow) as rx:
        with pytest.raises(OutboundError, match="timeout"):
            await make(("127.0.0.1",), read_timeout_s=0.2).post(rx.url, body=b"", headers={})


async def test_connection_refused_raises_outbound_error(make: Callable[..., Outbound]) -> None:
    async with Receiver() as rx:
        port = rx.port
    with pytest.raises(OutboundError, match="connect"):
        await make(("127.0.0.1",)).post(f"http://127.0.0.1:{port}/", body=b"", headers={})


async def test_body_that_stalls_raises_outbound_error(make: Callable[..., Outbound]) -> None:
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()  # and never the rest

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        out = make(("127.0.0.1",), read_timeout_s=0.2)
        with pytest.raises(OutboundError, match="timeout"):
            await out.post(f"http://127.0.0.1:{port}/", body=b"", headers={})
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


# -- every spelling of an address, and resolution when a URL is written (issue 11, item 8) -----
@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f000001/", "127.0.0.1"),
        ("http://0x7F.1/", "127.0.0.1"),
        ("http://017700000001/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://127.0.0.1./", "127.0.0.1"),
        ("http://167772161/", "10.0.0.1"),
        ("http://0/", "0.0.0.0"),
        ("http://[::ffff:7f00:1]/", "::ffff:7f00:1"),
        ("http://[2002:7f00:1::]/", "2002:7f00:1::"),
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe"),
    ],
)
def test_check_url_reads_every_numeric_spelling_the_resolver_would(
    make: Callable[..., Outbound], url: str, address: str
) -> None:
    with pytest.raises(OutboundRefused) as info:
        make().check_url(url)
    assert f"({address})" in info.value.reason or info.value.reason.startswith(address)


@pytest.mark.parametrize(
    "host", ["ip6-localhost", "ip6-loopback", "localhost6", "localhost.localdomain", "a.localhost"]
)
def test_check_url_refuses_the_loopback_names_of_etc_hosts(
    make: Callable[..., Outbound], host: str
) -> None:
    with pytest.raises(OutboundRefused, match="loopback name"):
        make().check_url(f"http://{host}:8080/hook")


def test_check_url_accepts_a_public_address_in_another_spelling(
    make: Callable[..., Outbound],
) -> None:
    make().check_url("http://1572395042/")  # 93.184.216.34
    make().check_url("http://[2002:5db8:d822::1]/")  # 6to4 of a public address


async def test_check_destination_refuses_a_name_that_resolves_to_an_internal_address(
    make: Callable[..., Outbound],
) -> None:
    table = {"rebind.example": ["93.184.216.34", "127.0.0.1"], "meta.example": ["fd00:ec2::254"]}
    out = make(resolver=fake_resolver(table))
    with pytest.raises(OutboundRefused, match=r"rebind\.example \(127\.0\.0\.1\) is a loopback"):
        await out.check_destination("https://rebind.example/hook")
    with pytest.raises(OutboundRefused, match="metadata"):
        await out.check_destination("https://meta.example/hook")
    with pytest.raises(OutboundRefused, match="loopback"):
        await out.check_destination("http://2130706433/")  # no resolver needed


async def test_check_destination_accepts_public_allowlisted_and_unresolvable_names(
    make: Callable[..., Outbound],
) -> None:
    table = {"hooks.example": ["93.184.216.34"], "hooks.internal": ["10.1.2.3"]}
    out = make(("hooks.internal",), resolver=fake_resolver(table))
    await out.check_destination("https://hooks.example/in")
    await out.check_destination("https://hooks.internal/in")
    await out.check_destination("https://not-yet.example/in")  # checked again at send


async def test_check_destination_accepts_a_name_whose_resolution_hangs(
    make: Callable[..., Outbound],
) -> None:
    async def hangs(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return ["127.0.0.1"]

    out = make(resolver=hangs, connect_timeout_s=0.1)
    await asyncio.wait_for(out.check_destination("https://slow.example/in"), 5)


async def test_post_to_a_numeric_spelling_connects_to_the_address_it_names(
    make: Callable[..., Outbound],
) -> None:
    async with Receiver() as rx:
        refused = make()
        with pytest.raises(OutboundRefused, match="loopback"):
            await refused.post(f"http://2130706433:{rx.port}/", body=b"x", headers={})
        assert rx.requests == []
        allowed = make(("127.0.0.1",))
        response = await allowed.post(f"http://0x7f000001:{rx.port}/in", body=b"x", headers={})
    assert response.status_code == 200
    [request] = rx.requests
    assert request.headers["host"] == f"0x7f000001:{rx.port}"
