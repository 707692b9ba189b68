"""The outbound HTTP seam: the SSRF guard refuses internal destinations in every encoding before any
socket is opened, pins the vetted address (no DNS rebinding), re-vets every redirect hop, honours the
allow-list, and bounds time and size.

"No connection was made" is observed, not assumed: an audit hook records every `socket.connect` and
`socket.getaddrinfo` the process makes (and refuses connects the test did not expect), and a real local
server counts the requests it got.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from ecrm.core import http

from .http_testserver import LocalServer, Reply, watch_sockets

REFUSED = [
    "http://10.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0177.0.0.1/",  # octal
    "http://2130706433/",  # decimal
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://0x7f.1/",  # hex, short form
    "http://0x7f000001/",
    "http://127.1/",  # short form
    "http://127.0.0.1./",  # trailing dot
    "http://[::1]/",
    "http://[::]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[2002:a9fe:a9fe::]/",  # 6to4 around 169.254.169.254
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 around 169.254.169.254
    "http://[::ffff:a9fe:a9fe]/",
    "http://[fe80::1%25eth0]/",  # zone id
    "http://[fe80::1]/",
    "http://[fc00::1]/",  # unique local
    "http://[ff02::1]/",
    "http://100.64.0.1/",  # CGNAT
    "http://192.168.1.1:8080/",
    "http://172.16.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://198.18.0.1/",
    "http://%31%32%37.0.0.1/",  # percent-encoded host
    "http://1.2.3.4%20foo/",
    "http://foo.0x10/",  # a name ending in a number is an (invalid) IPv4 address
    "http://user:pw@8.8.8.8/",  # credentials in the URL
    "file:///etc/passwd",
    "gopher://8.8.8.8/",
    "http:///nohost",
]


@pytest.fixture
def server():
    srv = LocalServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def allow(settings):
    def _allow(*entries: str) -> None:
        settings.ECRM_OUTBOUND_ALLOWLIST = list(entries)

    settings.ECRM_OUTBOUND_ALLOWLIST = []
    return _allow


@pytest.mark.parametrize("url", REFUSED)
def test_internal_destinations_are_refused_without_any_connection_or_lookup(url, allow):
    with watch_sockets(allow=lambda address: False) as seen, pytest.raises(http.OutboundRefused):
        http.send("POST", url, body=b"{}")
    assert seen.connects == []
    assert seen.lookups == []  # numeric forms are decided without asking any resolver


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "[::ffff:127.0.0.1]"])
def test_a_listening_loopback_server_is_not_reached_through_any_encoding(host, server, allow):
    with watch_sockets(allow=lambda address: False) as seen, pytest.raises(http.OutboundRefused):
        http.send("GET", f"http://{host}:{server.port}/")
    assert seen.connects == [] and server.requests == []


def test_a_name_that_resolves_to_loopback_is_refused_after_one_lookup_and_no_connect(server, allow):
    with watch_sockets(allow=lambda address: False) as seen, pytest.raises(http.OutboundRefused) as err:
        http.send("GET", f"http://localhost:{server.port}/")
    assert "resolves to" in str(err.value)
    assert seen.lookups == ["localhost"] and seen.connects == []
    assert server.requests == []


def test_an_allow_listed_local_server_is_reached_at_the_vetted_address(server, allow):
    allow(f"127.0.0.1:{server.port}")
    with watch_sockets(allow=lambda address: address == ("127.0.0.1", server.port)) as seen:
        resp = http.send(
            "POST", f"{server.url}/hook?x=1", body=b'{"a":1}', headers={"Content-Type": "application/json"}
        )
    assert (resp.status, resp.body) == (200, b"ok")
    assert seen.connects == [("127.0.0.1", server.port)]
    [req] = server.requests
    assert (req.method, req.path, req.body) == ("POST", "/hook?x=1", b'{"a":1}')
    assert req.headers["Host"] == f"127.0.0.1:{server.port}"


def test_the_allow_list_port_matters(server, allow):
    allow(f"127.0.0.1:{server.port + 1 if server.port < 65535 else server.port - 1}")
    with watch_sockets(allow=lambda address: False) as seen, pytest.raises(http.OutboundRefused):
        http.send("GET", server.url)
    assert seen.connects == [] and server.requests == []


def test_an_allow_listed_ip_is_allowed_in_any_encoding(server, allow):
    allow("127.0.0.1")
    resp = http.send("GET", f"http://2130706433:{server.port}/x")
    assert resp.status == 200 and server.requests[0].path == "/x"


def test_a_redirect_from_the_allow_listed_server_to_a_refused_address_is_not_followed(server, allow):
    allow(f"127.0.0.1:{server.port}")
    server.replies = [Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})]
    with watch_sockets(allow=lambda address: address == ("127.0.0.1", server.port)) as seen:
        with pytest.raises(http.OutboundRefused, match="169.254.169.254"):
            http.send("GET", f"{server.url}/start")
    assert seen.connects == [("127.0.0.1", server.port)]  # the first hop only
    assert [r.path for r in server.requests] == ["/start"]


@pytest.mark.parametrize(
    "location",
    [
        "http://10.0.0.1/",
        "http://2130706433/",
        "http://[::ffff:10.0.0.1]/",
        "http://localhost:1/",
        "http://127.0.0.1:1/",
    ],
)
def test_every_redirect_hop_is_vetted_again(location, server, allow):
    allow(f"127.0.0.1:{server.port}")
    server.replies = [Reply(307, b"", {"Location": location.format(port=server.port)})]
    with watch_sockets(allow=lambda address: address == ("127.0.0.1", server.port)) as seen:
        with pytest.raises(http.OutboundRefused):
            http.send("POST", f"{server.url}/start", body=b"x")
    assert seen.connects == [("127.0.0.1", server.port)]
    assert len(server.requests) == 1


def test_an_allowed_redirect_is_followed_and_a_loop_stops(server, allow):
    allow(f"127.0.0.1:{server.port}")
    server.replies = [Reply(308, b"", {"Location": "/next"}), Reply(200, b"there")]
    resp = http.send("POST", f"{server.url}/start", body=b"payload")
    assert (resp.status, resp.body, resp.url) == (200, b"there", f"{server.url}/next")
    assert [(r.method, r.path, r.body) for r in server.requests] == [
        ("POST", "/start", b"payload"),
        ("POST", "/next", b"payload"),
    ]
    server.requests.clear()
    server.replies = [Reply(302, b"", {"Location": "/again"}) for _ in range(5)]
    with pytest.raises(http.OutboundRefused, match="Too many redirects"):
        http.send("GET", f"{server.url}/loop", max_redirects=2)
    assert len(server.requests) == 3


def test_with_redirects_off_a_3xx_is_returned_as_it_is(server, allow):
    allow(f"127.0.0.1:{server.port}")
    server.replies = [Reply(301, b"moved", {"Location": "http://10.0.0.1/"})]
    resp = http.send("POST", server.url, body=b"{}", max_redirects=0)
    assert resp.status == 301 and len(server.requests) == 1


@pytest.fixture
def fake_dns(monkeypatch):
    """Answers for made-up names, in order (the last answer repeats); real lookups for everything else."""
    real = socket.getaddrinfo
    answers: dict[str, list[list[str]]] = {}
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host in answers:
            asked.append(host)
            queue = answers[host]
            ips = queue.pop(0) if len(queue) > 1 else queue[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, asked


def test_the_connection_is_pinned_to_the_checked_address_so_a_second_answer_cannot_rebind(
    server, allow, fake_dns
):
    answers, asked = fake_dns
    # first answer public (passes the guard), every later answer points at the local server
    answers["rebind.test"] = [["93.184.216.34"], ["127.0.0.1"]]
    with watch_sockets(allow=lambda address: address[0] == "127.0.0.1") as seen, pytest.raises(OSError):
        http.send("GET", f"http://rebind.test:{server.port}/", timeout=2)
    assert asked == ["rebind.test"]  # resolved once
    assert seen.connects == [
        ("93.184.216.34", server.port)
    ]  # went to the vetted address (blocked by the hook)
    assert server.requests == []  # and never to the rebound one


def test_a_pinned_request_keeps_the_original_host_header(server, allow, fake_dns):
    answers, asked = fake_dns
    answers["erp.office.test"] = [["127.0.0.1"], ["10.0.0.1"]]
    allow(f"erp.office.test:{server.port}")
    with watch_sockets(allow=lambda address: address == ("127.0.0.1", server.port)) as seen:
        resp = http.send("GET", f"http://erp.office.test:{server.port}/orders")
    assert resp.status == 200 and asked == ["erp.office.test"]
    assert seen.connects == [("127.0.0.1", server.port)]
    assert server.requests[0].headers["Host"] == f"erp.office.test:{server.port}"


def test_a_name_with_any_internal_answer_is_refused(allow, fake_dns):
    answers, _ = fake_dns
    answers["mixed.test"] = [["93.184.216.34", "10.0.0.7"]]
    with (
        watch_sockets(allow=lambda address: False) as seen,
        pytest.raises(http.OutboundRefused, match="10.0.0.7"),
    ):
        http.send("GET", "http://mixed.test/")
    assert seen.connects == []


def test_a_cidr_allow_list_entry_admits_names_resolving_into_it(server, allow, fake_dns):
    answers, _ = fake_dns
    answers["wms.test"] = [["127.0.0.1"]]
    allow("127.0.0.0/8")
    assert http.send("GET", f"http://wms.test:{server.port}/").status == 200


def test_proxies_from_the_environment_are_not_used(server, allow, monkeypatch):
    allow(f"127.0.0.1:{server.port}")
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://10.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with watch_sockets(allow=lambda address: address == ("127.0.0.1", server.port)) as seen:
        assert http.send("GET", server.url).status == 200
    assert seen.connects == [("127.0.0.1", server.port)]


def test_response_bodies_are_capped(server, allow):
    allow("127.0.0.1")
    server.replies = [Reply(200, b"x" * 300_000)]
    resp = http.send("GET", server.url, max_bytes=100_000)
    assert (len(resp.body), resp.truncated) == (100_000, True)
    server.replies = [Reply(200, b"y" * 10)]
    resp = http.send("GET", server.url, max_bytes=100_000)
    assert (resp.body, resp.truncated) == (b"y" * 10, False)


def test_a_slow_server_times_out(server, allow):
    allow("127.0.0.1")
    server.replies = [Reply(200, b"late", delay=1.5)]
    with pytest.raises(OSError):
        http.send("GET", server.url, timeout=0.3)


def test_cross_origin_redirects_drop_credentials(server, allow):
    other = LocalServer().start()
    try:
        allow("127.0.0.1")
        server.replies = [Reply(307, b"", {"Location": f"{other.url}/x"})]
        http.send("GET", server.url, headers={"Authorization": "Bearer s3cret", "X-Trace": "1"})
        assert server.requests[0].headers["Authorization"] == "Bearer s3cret"
        assert (
            "Authorization" not in other.requests[0].headers and other.requests[0].headers["X-Trace"] == "1"
        )
    finally:
        other.stop()


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433:8080", "127.0.0.1:8080"),
        ("ERP.Office.Local:8443", "erp.office.local:8443"),
        ("10.1.0.0/16", "10.1.0.0/16"),
        ("[::1]:8080", "[::1]:8080"),
        ("fd00::/8", "fd00::/8"),
    ],
)
def test_allow_list_entries_are_normalised(raw, canonical):
    assert http.normalise_allow_entry(raw) == canonical


@pytest.mark.parametrize("raw", ["", "10.0.0.0/33", "host:port", "bad host", "[::1", "1.2.3.999", "h:70000"])
def test_malformed_allow_list_entries_are_rejected(raw):
    with pytest.raises(ValueError):
        http.normalise_allow_entry(raw)


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("8.8.8.8", True), ("2606:4700::1111", True), ("2002:0808:0808::1", True), ("64:ff9b::808:808", True),
        ("10.0.0.1", False), ("100.127.255.255", False), ("192.0.0.8", False), ("::ffff:192.168.0.1", False),
        ("2001:db8::1", False), ("2001::1", False), ("fd12::1", False), ("fec0::1", False),
    ],
)  # fmt: skip
def test_is_public(ip, public):
    assert http.is_public(ipaddress.ip_address(ip)) is public


def test_signing_is_unchanged_for_existing_callers():
    import hashlib
    import hmac

    assert http.sign("s", b"body") == "sha256=" + hmac.new(b"s", b"body", hashlib.sha256).hexdigest()


@pytest.fixture
def tls_server(tmp_path):
    """An https server whose certificate names only pinned.test, and the client trust for it."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(  # noqa: S603
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=pinned.test",
            "-addext",
            "subjectAltName=DNS:pinned.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],  # fmt: skip
        check=True,
        capture_output=True,
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni.append(name)
    srv = LocalServer(tls=server_ctx).start()
    srv.sni = sni
    srv.cafile = str(cert)
    yield srv
    srv.stop()


def test_https_is_pinned_with_sni_and_the_certificate_checked_for_the_host_name(
    tls_server, allow, fake_dns, monkeypatch
):
    import ssl

    answers, asked = fake_dns
    answers["pinned.test"] = [["127.0.0.1"], ["10.0.0.1"]]
    answers["other.test"] = [["127.0.0.1"]]
    allow("127.0.0.1")
    monkeypatch.setattr(
        http, "tls_context_factory", lambda: ssl.create_default_context(cafile=tls_server.cafile)
    )
    with watch_sockets(allow=lambda address: address == ("127.0.0.1", tls_server.port)) as seen:
        resp = http.send("POST", f"https://pinned.test:{tls_server.port}/hook", body=b"{}")
    assert resp.status == 200 and asked == ["pinned.test"]
    assert seen.connects == [("127.0.0.1", tls_server.port)]
    assert tls_server.sni == ["pinned.test"]
    assert tls_server.requests[0].headers["Host"] == f"pinned.test:{tls_server.port}"
    # the same address under a name the certificate does not cover: the TLS check refuses it
    with pytest.raises(ssl.SSLCertVerificationError):
        http.send("GET", f"https://other.test:{tls_server.port}/")
    assert len(tls_server.requests) == 1


def test_a_name_with_several_vetted_addresses_falls_back_to_the_next_one(server, allow, fake_dns):
    answers, asked = fake_dns
    answers["two.test"] = [["127.0.0.2", "127.0.0.1"], ["10.0.0.1"]]  # nothing listens on 127.0.0.2
    allow("127.0.0.0/8")
    with watch_sockets(allow=lambda address: address[0] in ("127.0.0.1", "127.0.0.2")) as seen:
        assert http.send("GET", f"http://two.test:{server.port}/").status == 200
    assert asked == ["two.test"]
    assert seen.connects == [("127.0.0.2", server.port), ("127.0.0.1", server.port)]
