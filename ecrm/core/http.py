"""The one seam for outbound HTTP: timeouts, an SSRF guard and HMAC signing live here, once.

Every request to another system (webhooks, shop and ERP integrations) goes through `send`; tests
patch this module, never the libraries under it. Destinations that resolve to private, loopback,
link-local or reserved addresses are refused unless listed in `ECRM_OUTBOUND_ALLOWLIST`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

DEFAULT_TIMEOUT = 10.0


class OutboundRefused(Exception):
    """The destination is not allowed (SSRF guard) or the URL is malformed."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str]


def _allowlist() -> set[str]:
    return set(getattr(settings, "ECRM_OUTBOUND_ALLOWLIST", []))


def check_destination(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused(f"Only http(s) URLs with a host are allowed: {url!r}")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if host in _allowlist() or f"{host}:{port}" in _allowlist():
        return
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise OutboundRefused(f"Cannot resolve {host!r}") from exc
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            raise OutboundRefused(f"{host!r} resolves to a non-public address ({ip})")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self, *args, **kwargs
    ):  # redirects are re-checked by the caller, never followed blindly
        return None


def send(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    secret: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_redirects: int = 3,
) -> Response:
    headers = dict(headers or {})
    if secret:
        headers["X-Ecrm-Signature"] = sign(secret, body)
    opener = urllib.request.build_opener(_NoRedirect)
    for _ in range(max_redirects + 1):
        check_destination(url)
        request = urllib.request.Request(url, data=body or None, headers=headers, method=method)  # noqa: S310
        try:
            with opener.open(request, timeout=timeout) as resp:
                return Response(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as err:
            if err.code in (301, 302, 303, 307, 308) and err.headers.get("Location"):
                url = urllib.parse.urljoin(url, err.headers["Location"])
                continue
            return Response(err.code, err.read(), dict(err.headers))
    raise OutboundRefused("Too many redirects")
