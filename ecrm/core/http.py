"""The one seam for outbound HTTP: the SSRF guard, a pinned connection, timeouts and signing live here, once.

Every request to another system (webhooks, shop, ERP and social connectors) goes through `send`; tests
patch this module, never the libraries under it.

The guard, in order, for the first URL and again for every redirect hop:

1. Only http and https, a host, no credentials in the URL, a valid port.
2. The host is parsed strictly. An IP literal in any encoding the C resolver accepts (decimal
   2130706433, octal 0177.0.0.1, hex 0x7f.1, short 127.1, bracketed IPv6 with IPv4-mapped, -compatible,
   6to4 or NAT64 forms) is normalised with `socket.inet_aton`'s rules and checked without any lookup;
   zone ids, percent-encoding and stray characters are refused. A name is resolved ONCE.
3. Every resolved address must be public (not private, loopback, link-local incl. 169.254.169.254,
   CGNAT 100.64/10, multicast, reserved, unspecified, 0/8, broadcast, IPv6 ULA or link-local ...) or
   allow-listed: `ECRM_OUTBOUND_ALLOWLIST` (env) plus the admin-managed list (Settings -> Webhooks,
   registered by the webhooks app through `register_allowlist_source`).
4. The connection is made to the vetted address itself (a pinned HTTPConnection / HTTPSConnection),
   sending the original Host header and, for https, SNI and certificate checks against the host name,
   so a second DNS answer cannot rebind the request to an internal address.

No proxies from the environment are used (urllib is not involved), each hop has a total time budget
(connect + read), and response bodies are capped (`Response.truncated` says when).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import http.client
import ipaddress
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
MAX_RESPONSE_BYTES = 1024 * 1024
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundRefused(Exception):
    """The destination is not allowed (SSRF guard) or the URL is malformed."""


class OutboundError(OSError):
    """The destination answered with something that is not HTTP, or too slowly (retryable, like OSError)."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str]
    truncated: bool = False  # the body was longer than max_bytes and was cut there
    url: str = ""  # the URL that answered (after redirects)


@dataclass(frozen=True)
class Destination:
    """A vetted target: connect to `ip`, speak to `host` (Host header, SNI, certificate)."""

    scheme: str
    host: str  # ASCII (IDNA) name or canonical IP text, IPv6 without brackets
    port: int
    ip: str
    target: str  # path and query sent on the request line
    allowlisted: bool = False
    addresses: tuple[str, ...] = field(default=())


# --- which addresses are public ------------------------------------------------------------------------

_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )  # fmt: skip
)
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible ::a.b.c.d
        "::ffff:0:0:0/96",  # SIIT
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, Teredo included
        "2001:db8::/32",
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local
        "fe80::/10",
        "fec0::/10",  # link-local, old site-local
        "ff00::/8",  # multicast
    )  # fmt: skip
)
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public(ip: IPAddress) -> bool:
    """True when `ip` is a globally routable unicast address, looking inside IPv6 forms that embed an
    IPv4 address (mapped, 6to4, NAT64) so an internal v4 cannot hide in them."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public(ip.ipv4_mapped)
        if any(ip in net for net in _BLOCKED_V6):
            return False
        if ip in _SIXTOFOUR:
            return ip.sixtofour is not None and is_public(ip.sixtofour)
        if ip in _NAT64:
            return is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return ip.is_global and not ip.is_multicast
    if any(ip in net for net in _BLOCKED_V4):
        return False
    return ip.is_global and not ip.is_multicast


# --- strict host parsing -------------------------------------------------------------------------------

_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_NAME_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def parse_host(host: str, *, bracketed: bool = False) -> IPAddress | str:
    """An IP address for an IP literal (in any encoding), else the ASCII host name; refuses junk."""
    if not host:
        raise OutboundRefused("The URL has no host.")
    if "%" in host:
        raise OutboundRefused(f"Zone ids and percent-encoding are not allowed in a host: {host!r}")
    if bracketed or ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise OutboundRefused(f"Malformed IPv6 address: {host!r}") from exc
    try:
        name = host.encode("idna").decode("ascii").lower() if not host.isascii() else host.lower()
    except UnicodeError as exc:
        raise OutboundRefused(f"Malformed host name: {host!r}") from exc
    if len(name) > 253:
        raise OutboundRefused("The host name is too long.")
    bare = name[:-1] if name.endswith(".") else name
    labels = bare.split(".")
    # As the URL standard says: a host whose last label is a number is an IPv4 address, in whatever
    # form inet_aton accepts (the C resolver would connect to it the same way), or it is invalid.
    if labels and _NUMERIC_LABEL.match(labels[-1]):
        if not all(_NUMERIC_LABEL.match(label) for label in labels):
            raise OutboundRefused(f"Malformed numeric host: {host!r}")
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError as exc:
            raise OutboundRefused(f"Malformed IPv4 address: {host!r}") from exc
    if not all(_NAME_LABEL.match(label) for label in labels):
        raise OutboundRefused(f"Malformed host name: {host!r}")
    return bare


# --- the allow-list ------------------------------------------------------------------------------------

_allowlist_sources: list[Callable[[], Iterable[str]]] = []


def register_allowlist_source(source: Callable[[], Iterable[str]]) -> None:
    """Add a provider of allow-list entries (the webhooks app's admin-managed list). Idempotent."""
    if source not in _allowlist_sources:
        _allowlist_sources.append(source)


@dataclass(frozen=True)
class _Entry:
    network: IPNetwork | None = None
    name: str = ""
    port: int | None = None

    def allows(self, host: str, ip: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return ip in self.network
        return self.name == host


@functools.lru_cache(maxsize=256)
def _parse_entry(value: str) -> _Entry:
    text = value.strip().lower()
    if not text:
        raise ValueError("Empty allow-list entry.")
    if "/" in text:
        try:
            return _Entry(network=ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(f"Not a valid CIDR range: {value!r}") from exc
    port: int | None = None
    host = text
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"Malformed entry: {value!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"Malformed port in {value!r}")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        if not p.isdigit():
            raise ValueError(f"Malformed port in {value!r}")
        port = int(p)
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"Port out of range in {value!r}")
    try:
        parsed = parse_host(host, bracketed=text.startswith("["))
    except OutboundRefused as exc:
        raise ValueError(str(exc)) from exc
    if isinstance(parsed, str):
        return _Entry(name=parsed, port=port)
    return _Entry(network=ipaddress.ip_network(parsed), port=port)


def normalise_allow_entry(value: str) -> str:
    """The canonical text of an allow-list entry (ValueError when it is not one)."""
    entry = _parse_entry(value)
    port = f":{entry.port}" if entry.port is not None else ""
    if entry.network is None:
        return entry.name + port
    net = entry.network
    if net.num_addresses == 1 and "/" not in value:
        addr = str(net.network_address)
        return (f"[{addr}]" if net.version == 6 and port else addr) + port
    return str(net)


def allowlist() -> list[str]:
    values = list(getattr(settings, "ECRM_OUTBOUND_ALLOWLIST", []) or [])
    for source in list(_allowlist_sources):
        try:
            values.extend(source())
        except Exception:  # a broken source must not open anything; it only adds nothing
            logger.exception("outbound allow-list source %r failed", source)
    return values


def _is_allowlisted(host: str, ip: IPAddress, port: int, entries: list[str]) -> bool:
    for value in entries:
        try:
            entry = _parse_entry(value)
        except ValueError:
            continue
        if entry.allows(host, ip, port):
            return True
    return False


# --- the guard -----------------------------------------------------------------------------------------


def _resolve(name: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundRefused(f"Cannot resolve {name!r}") from exc
    out: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    if not out:
        raise OutboundRefused(f"Cannot resolve {name!r}")
    return out


def check_destination(url: str) -> Destination:
    """Vet `url` (see the module docstring) and return where to connect; raises OutboundRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"Malformed URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise OutboundRefused(f"Only http and https URLs are allowed, not {scheme or 'none'!r}.")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("Credentials in the URL are not allowed; use a header.")
    raw_host = parts.hostname or ""
    bracketed = "[" in parts.netloc
    parsed = parse_host(raw_host, bracketed=bracketed)
    port = port or (443 if scheme == "https" else 80)
    entries = allowlist()
    if isinstance(parsed, str):
        host = parsed
        addresses = _resolve(parsed, port)
    else:
        host = str(parsed)
        addresses = [parsed]
    allowlisted = False
    for ip in addresses:
        if _is_allowlisted(host, ip, port, entries):
            allowlisted = True
        elif not is_public(ip):
            shown = host if host == str(ip) else f"{host!r} resolves to {ip}"
            raise OutboundRefused(
                f"{shown}: a private, loopback, link-local or reserved address is not allowed"
            )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(
        scheme=scheme, host=host, port=port, ip=str(addresses[0]), target=target, allowlisted=allowlisted,
        addresses=tuple(str(a) for a in addresses),
    )  # fmt: skip


# --- pinned connections --------------------------------------------------------------------------------


def _connect(ips: tuple[str, ...], port: int, connect_timeout: float, read_timeout: float) -> socket.socket:
    """Connect to the first of the vetted addresses that answers (all of them passed the guard)."""
    error: OSError | None = None
    for ip in ips:
        try:
            sock = socket.create_connection((ip, port), timeout=connect_timeout)
        except OSError as exc:
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(read_timeout)
        return sock
    raise error or OSError("no address to connect to")


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the vetted IP, never re-resolving `host` (which still goes in the Host header)."""

    def __init__(
        self, host: str, port: int, *, ips: tuple[str, ...], connect_timeout: float, read_timeout: float
    ):
        super().__init__(host, port, timeout=connect_timeout)
        self.pinned_ips, self.read_timeout = ips, read_timeout

    def connect(self) -> None:
        self.sock = _connect(self.pinned_ips, self.port, self.timeout, self.read_timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the vetted IP, with SNI and the certificate checked against the host name."""

    def __init__(
        self, host: str, port: int, *, ips: tuple[str, ...], connect_timeout: float, read_timeout: float,
        context: ssl.SSLContext | None = None,
    ):  # fmt: skip
        context = context or ssl.create_default_context()
        super().__init__(host, port, timeout=connect_timeout, context=context)
        self.pinned_ips, self.read_timeout, self.tls_context = ips, read_timeout, context

    def connect(self) -> None:
        sock = _connect(self.pinned_ips, self.port, self.timeout, self.read_timeout)
        self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)


# Tests may set this to trust a local test CA; production uses the system store.
tls_context_factory: Callable[[], ssl.SSLContext] = ssl.create_default_context


def _once(
    dest: Destination,
    method: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    max_bytes: int,
    url: str,
) -> Response:
    deadline = time.monotonic() + timeout
    connect_timeout = min(CONNECT_TIMEOUT, timeout)
    conn: http.client.HTTPConnection
    if dest.scheme == "https":
        conn = PinnedHTTPSConnection(dest.host, dest.port, ips=dest.addresses, connect_timeout=connect_timeout,
                                     read_timeout=timeout, context=tls_context_factory())  # fmt: skip
    else:
        conn = PinnedHTTPConnection(dest.host, dest.port, ips=dest.addresses, connect_timeout=connect_timeout,
                                    read_timeout=timeout)  # fmt: skip
    try:
        conn.request(method, dest.target, body=body or None, headers=headers)
        resp = conn.getresponse()
        chunks: list[bytes] = []
        size, truncated = 0, False
        while True:
            if time.monotonic() > deadline:  # a server dripping bytes must not hold a worker forever
                raise OutboundError(f"the response took longer than {timeout:g}s")
            chunk = resp.read(min(65536, max_bytes - size + 1)) if method != "HEAD" else b""
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                truncated = True
                break
        data = b"".join(chunks)[:max_bytes]
        return Response(resp.status, data, {k: v for k, v in resp.getheaders()}, truncated, url)
    except http.client.HTTPException as exc:
        raise OutboundError(f"not a valid HTTP response: {exc!r}") from exc
    finally:
        conn.close()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_CROSS_ORIGIN_DROP = ("authorization", "cookie", "proxy-authorization", "x-ecrm-signature")


def send(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    secret: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_redirects: int = 3,
    max_bytes: int = MAX_RESPONSE_BYTES,
    basic_auth: tuple[str, str] | None = None,
) -> Response:
    """Send one request through the guard. Redirects are followed by hand (at most `max_redirects`,
    each hop vetted again); with max_redirects=0 a 3xx is returned as it is. Raises OutboundRefused for
    a refused destination and OSError (OutboundError, TimeoutError, ConnectionError) for network trouble."""
    method = method.upper()
    headers = dict(headers or {})
    if secret:
        headers["X-Ecrm-Signature"] = sign(secret, body)
    if basic_auth:
        token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    for hop in range(max_redirects + 1):
        dest = check_destination(url)
        resp = _once(dest, method, body, headers, timeout, max_bytes, url)
        location = resp.headers.get("Location") or resp.headers.get("location")
        if resp.status not in REDIRECT_CODES or not location or max_redirects == 0:
            return resp
        if hop == max_redirects:
            raise OutboundRefused(f"Too many redirects (more than {max_redirects}).")
        next_url = urljoin(url, location)
        if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
            method, body = ("GET" if method != "HEAD" else "HEAD"), b""
            headers = {
                k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")
            }
        old, new = urlsplit(url), urlsplit(next_url)
        if (old.scheme, old.netloc) != (new.scheme, new.netloc):
            headers = {k: v for k, v in headers.items() if k.lower() not in _CROSS_ORIGIN_DROP}
        url = next_url
    raise OutboundRefused("Too many redirects.")  # not reached
