"""Outbound HTTP that ttlp sends on its own: webhook actions and the forwarder (DESIGN §8).

Every request goes through :class:`Outbound`, which refuses destinations inside the
operator's network (SSRF) unless ``WEBHOOK_ALLOWLIST`` names them:

- only ``http``/``https``, a host, no ``user:pass@``, a port in :data:`ALLOWED_PORTS`
  (80, 443 and the unprivileged range) — :meth:`Outbound.check_url` does these static checks
  plus literal IP addresses in every spelling the resolver accepts (``2130706433``,
  ``0x7f000001``, ``127.1``, IPv4 inside IPv6) and known loopback and metadata names;
- :meth:`Outbound.check_destination` adds what send time does: the host is resolved through
  the same resolver and refused when an address is (for a target or rule when it is written:
  a name that does not resolve yet is accepted, and checked again at every send);
- at send time the host is resolved first and refused if ANY address is loopback, private
  (RFC 1918, ``fc00::/7``), link-local (``169.254/16``, ``fe80::/10``), CGNAT (``100.64/10``),
  unspecified, multicast, reserved or otherwise not globally routable, or a cloud metadata
  address (``169.254.169.254``, ``fd00:ec2::254``, ``metadata.google.internal``);
- the connection goes to the address that was checked, not to a second DNS answer (no
  DNS-rebinding window): the URL is rewritten to the IP while the ``Host`` header and, for
  https, the TLS SNI / certificate check keep the original name;
- redirects are followed by hand (at most :data:`MAX_REDIRECTS`), each hop checked again;
- connect and read timeouts come from ``OUTBOUND_CONNECT_TIMEOUT_S`` /
  ``OUTBOUND_READ_TIMEOUT_S``; the response body is read up to
  ``OUTBOUND_MAX_RESPONSE_BYTES`` and the rest dropped (``OutboundResponse.truncated``):
  callers care about the status, and a huge body must not cost memory.

An allowlist entry is a hostname (matched exactly, case-insensitive: every address it resolves
to is then allowed) or an address / CIDR (``127.0.0.1``, ``10.0.0.0/8``, ``::1``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import httpx

from ttlp.errors import TransientError, UnprocessableError
from ttlp.settings import OutboundSettings

__all__ = [
    "ALLOWED_PORTS",
    "MAX_REDIRECTS",
    "Outbound",
    "OutboundError",
    "OutboundRefused",
    "OutboundResponse",
    "Resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``async (host, port) -> [address, ...]``; the default uses the loop's getaddrinfo."""

MAX_REDIRECTS = 3
"""Redirect hops followed per request; each hop is checked like the first URL."""

ALLOWED_PORTS = frozenset({80, 443}) | frozenset(range(1024, 65536))
"""80, 443 and the unprivileged range: a webhook has no business talking to SSH or SMTP (an
allow-listed host or address may use any port)."""

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
LOOPBACK_HOSTS = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "localhost6",
        "localhost6.localdomain6",
        "ip6-localhost",
        "ip6-loopback",
    }
)
"""Names /etc/hosts gives the loopback addresses on common systems: refused without asking
the resolver, whose answer for them depends on the machine the check runs on."""
NUMERIC_IPV4 = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}$", re.I)
"""The numbers-and-dots spellings inet_aton (and so getaddrinfo) reads as an IPv4 address:
decimal, octal or hex parts, 1 to 4 of them (``2130706433``, ``0x7f.1``, ``127.1``)."""
NAT64 = ipaddress.ip_network("64:ff9b::/96")
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
MAX_CLIENTS = 64
"""Connection pools kept (one per destination host, so a pooled TLS connection verified for
one name is never reused for another that happens to share the address)."""


class OutboundRefused(UnprocessableError):
    """The destination is not allowed (``reason`` says why); retrying will not help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutboundError(TransientError):
    """The request failed on the way (DNS, connect, timeout, protocol); may succeed later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    status_code: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    truncated: bool = False
    """True when the body was longer than ``max_response_bytes`` (the rest was dropped)."""
    url: str = ""
    """The URL that answered (after redirects)."""


async def _getaddrinfo(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError(f"cannot resolve {host}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries to its destination: IPv4-mapped (``::ffff:a.b.c.d``),
    6to4, Teredo (the client) or the NAT64 well-known prefix."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public destination, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            problem = _address_problem(embedded)
            if problem is not None or ip.ipv4_mapped is not None:
                return problem
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT:
        return "CGNAT address"
    if isinstance(ip, ipaddress.IPv6Address) and ip in UNIQUE_LOCAL:
        return "private address"
    if ip.is_private:
        return "private address"
    if ip.is_reserved:
        return "reserved address"
    if not ip.is_global:
        return "non-public address"
    return None


def _parse_ip(host: str) -> IPAddress | None:
    """``host`` as the address the resolver would read it as, or None for a name: the standard
    forms, and the numeric IPv4 spellings of :data:`NUMERIC_IPV4` (a trailing dot ignored)."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    host = host.removesuffix(".")
    if not NUMERIC_IPV4.match(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


class Outbound:
    """SSRF-safe HTTP POST for webhooks and the forwarder; see the module docstring."""

    def __init__(self, settings: OutboundSettings, *, resolver: Resolver | None = None) -> None:
        self._settings = settings
        self._resolve: Resolver = resolver or _getaddrinfo
        self._hosts: frozenset[str] = frozenset()
        nets: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in settings.allowlist:
            entry = entry.strip()
            if not entry:
                continue
            try:
                nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        self._nets = tuple(nets)
        self._hosts = frozenset(hosts)
        self._timeout = httpx.Timeout(
            connect=settings.connect_timeout_s,
            read=settings.read_timeout_s,
            write=settings.read_timeout_s,
            pool=settings.connect_timeout_s,
        )
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()

    # -- checks ------------------------------------------------------------------------------
    def _host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self._hosts

    def _ip_allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self._nets)

    def _check_ip(self, host: str, ip: IPAddress) -> None:
        if self._ip_allowed(ip):
            return
        problem = _address_problem(ip)
        if problem is not None:
            shown = host if str(ip) == host else f"{host} ({ip})"
            raise OutboundRefused(f"{shown} is a {problem} (not in WEBHOOK_ALLOWLIST)")

    def _parse(self, url: str) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
            host = parsed.host  # decodes an IDNA name: a malformed one raises here
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise OutboundRefused(f"invalid URL: {exc}") from None
        if parsed.scheme not in ("http", "https"):
            raise OutboundRefused("only http and https URLs are allowed")
        if not host:
            raise OutboundRefused("the URL has no host")
        if parsed.userinfo:
            raise OutboundRefused("credentials in the URL (user:pass@) are not allowed")
        port = parsed.port or _default_port(parsed.scheme)
        if port not in ALLOWED_PORTS and not self._host_allowed(parsed.host):
            literal = _parse_ip(parsed.host)
            if literal is None or not self._ip_allowed(literal):
                raise OutboundRefused(f"port {port} is not allowed")
        return parsed

    def check_url(self, url: str) -> None:
        """Static checks (no DNS): scheme, host, no userinfo, port, literal IPs in any
        spelling, loopback and metadata names.

        Raises :class:`OutboundRefused`. Passing does not mean the URL will be reachable: the
        host's addresses are checked again at every send.
        """
        self._check_static(self._parse(url))

    async def check_destination(self, url: str) -> None:
        """``check_url``, then the host resolved as a send would resolve it: refused
        (:class:`OutboundRefused`) when any address is. What a target or a rule's webhook is
        checked with when it is written (422 naming why). A name that does not resolve (yet,
        or DNS is away) is accepted within ``connect_timeout_s``: every send checks again."""
        parsed = self._parse(url)
        if self._check_static(parsed) is not None or self._host_allowed(parsed.host):
            return
        try:
            async with asyncio.timeout(self._settings.connect_timeout_s):
                await self._addresses(parsed)
        except (OutboundError, TimeoutError):
            return

    def _check_static(self, parsed: httpx.URL) -> IPAddress | None:
        host = parsed.host
        if self._host_allowed(host):
            return _parse_ip(host)
        literal = _parse_ip(host)
        if literal is not None:
            self._check_ip(host, literal)
            return literal
        name = host.lower().rstrip(".")
        if name in METADATA_HOSTS:
            raise OutboundRefused(f"{host} is a cloud metadata name (not in WEBHOOK_ALLOWLIST)")
        if name in LOOPBACK_HOSTS or name.endswith(".localhost"):
            raise OutboundRefused(f"{host} is a loopback name (not in WEBHOOK_ALLOWLIST)")
        return None

    async def _addresses(self, parsed: httpx.URL) -> list[IPAddress]:
        """The checked addresses to connect to, in resolver order."""
        literal = self._check_static(parsed)
        if literal is not None:
            return [literal]
        host = parsed.host
        port = parsed.port or _default_port(parsed.scheme)
        found: list[IPAddress] = []
        for raw in await self._resolve(host, port):
            ip = _parse_ip(raw)
            if ip is None:
                raise OutboundError(f"resolver returned a non-address for {host}: {raw!r}")
            found.append(ip)
        if not found:
            raise OutboundError(f"{host} has no addresses")
        if not self._host_allowed(host):
            for ip in found:  # ANY bad address refuses: a rebinding answer may pick it later
                self._check_ip(host, ip)
        return found

    # -- sending -----------------------------------------------------------------------------
    def _client(self, key: str) -> httpx.AsyncClient:
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        client = httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,  # a proxy would resolve the name itself, behind our check
        )
        self._clients[key] = client
        if len(self._clients) > MAX_CLIENTS:
            _, old = self._clients.popitem(last=False)
            task = asyncio.get_running_loop().create_task(old.aclose())
            task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
        return client

    async def _send_once(
        self, method: str, parsed: httpx.URL, body: bytes, headers: Mapping[str, str]
    ) -> OutboundResponse:
        addresses = await self._addresses(parsed)
        host = parsed.host
        port = parsed.port
        host_header = f"[{host}]" if ":" in host else host
        if port is not None:
            host_header = f"{host_header}:{port}"
        client = self._client(f"{parsed.scheme}://{host_header}")
        extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
        last: Exception | None = None
        for ip in addresses:
            pinned = parsed.copy_with(host=str(ip))
            request = client.build_request(
                method,
                pinned,
                content=body if method != "GET" else None,
                headers={**headers, "Host": host_header},
                extensions=extensions,
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.ConnectError as exc:
                last = exc
                continue  # next checked address
            except httpx.TimeoutException as exc:
                raise OutboundError(f"timeout talking to {host}: {type(exc).__name__}") from None
            except httpx.HTTPError as exc:
                raise OutboundError(f"request to {host} failed: {exc!r}") from None
            try:
                return await self._read(response, str(parsed))
            finally:
                await response.aclose()
        raise OutboundError(f"cannot connect to {host}: {last!r}")

    async def _read(self, response: httpx.Response, url: str) -> OutboundResponse:
        limit = self._settings.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        truncated = False
        try:
            async for chunk in response.aiter_raw():
                room = limit - size
                if len(chunk) > room:
                    chunks.append(chunk[:room])
                    truncated = True
                    break
                chunks.append(chunk)
                size += len(chunk)
        except httpx.TimeoutException:
            raise OutboundError("timeout reading the response") from None
        except httpx.HTTPError as exc:
            raise OutboundError(f"reading the response failed: {exc!r}") from None
        return OutboundResponse(
            status_code=response.status_code,
            body=b"".join(chunks),
            headers=dict(response.headers),
            truncated=truncated,
            url=url,
        )

    async def post(self, url: str, *, body: bytes, headers: Mapping[str, str]) -> OutboundResponse:
        """POST ``body``; follow up to :data:`MAX_REDIRECTS` redirects, checking every hop.

        Raises :class:`OutboundRefused` (destination not allowed, or too many redirects) or
        :class:`OutboundError` (DNS, connect, timeout). Any HTTP status is returned as is.
        """
        parsed = self._parse(url)
        method = "POST"
        for hop in range(MAX_REDIRECTS + 1):
            response = await self._send_once(method, parsed, body, headers)
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_CODES or not location:
                return response
            if hop == MAX_REDIRECTS:
                break
            try:
                target = parsed.join(location)
            except (httpx.InvalidURL, ValueError) as exc:
                raise OutboundRefused(f"invalid redirect location: {exc}") from None
            if response.status_code in (301, 302, 303):
                method = "GET"  # what browsers and httpx do; the body is not re-sent
            if (target.scheme, target.host, target.port) != (
                parsed.scheme,
                parsed.host,
                parsed.port,
            ):
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            parsed = self._parse(str(target))
        raise OutboundRefused(f"more than {MAX_REDIRECTS} redirects")

    async def aclose(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()
