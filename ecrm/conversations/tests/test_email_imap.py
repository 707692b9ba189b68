"""IMAP polling against a small real IMAP server on a local socket (imaplib talks to it unchanged):
unseen mail is stored, flagged \\Seen only after it is stored, one bad message blocks nothing."""

from __future__ import annotations

import imaplib
import re
import socketserver
import threading
from pathlib import Path

import pytest
from django.core.cache import cache

from ecrm.conversations.channels.email import imap as imap_module
from ecrm.conversations.channels.email.imap import due_inboxes, poll_inbox
from ecrm.conversations.models import Message
from ecrm.conversations.services import create_inbox
from ecrm.conversations.tasks import poll_email_inboxes

FIXTURES = Path(__file__).parent / "fixtures" / "mail"


class Mailbox:
    def __init__(self):
        self.messages: dict[int, bytes] = {}
        self.flags: dict[int, set[str]] = {}
        self.log: list[str] = []  # commands in order, to check that STORE comes after the store

    def add(self, raw: bytes, *flags: str) -> int:
        uid = len(self.messages) + 1
        self.messages[uid] = raw
        self.flags[uid] = set(flags)
        return uid


class ImapHandler(socketserver.StreamRequestHandler):
    """Just enough IMAP4rev1 for imaplib: LOGIN, SELECT, UID SEARCH/FETCH/STORE, LOGOUT."""

    def send(self, line: str | bytes) -> None:
        self.wfile.write(line if isinstance(line, bytes) else line.encode())

    def handle(self):
        box: Mailbox = self.server.mailbox  # type: ignore[attr-defined]
        self.send("* OK IMAP4rev1 test server ready\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            tag, _, rest = line.decode().strip().partition(" ")
            cmd, _, args = rest.partition(" ")
            cmd = cmd.upper()
            box.log.append(f"{cmd} {args}".strip())
            if cmd == "CAPABILITY":
                self.send(f"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n")
            elif cmd == "LOGIN":
                ok = args.split(" ")[0].strip('"') == "support" and args.split(" ")[1].strip('"') == "secret"
                self.send(
                    f"{tag} OK logged in\r\n" if ok else f"{tag} NO [AUTHENTICATIONFAILED] bad login\r\n"
                )
            elif cmd == "SELECT":
                self.send(
                    f"* {len(box.messages)} EXISTS\r\n* FLAGS (\\Seen \\Flagged)\r\n{tag} OK [READ-WRITE] ok\r\n"
                )
            elif cmd == "UID":
                self.uid(tag, args, box)
            elif cmd == "LOGOUT":
                self.send(f"* BYE bye\r\n{tag} OK done\r\n")
                return
            else:
                self.send(f"{tag} BAD unknown command\r\n")

    def uid(self, tag: str, args: str, box: Mailbox) -> None:
        sub, _, rest = args.partition(" ")
        sub = sub.upper()
        if sub == "SEARCH":
            unseen = [str(u) for u, f in box.flags.items() if "\\Seen" not in f]
            self.send(f"* SEARCH {' '.join(unseen)}\r\n{tag} OK search done\r\n")
        elif sub == "FETCH":
            uid = int(rest.split(" ")[0])
            raw = box.messages[uid]
            self.send(f"* {uid} FETCH (UID {uid} BODY[] {{{len(raw)}}}\r\n".encode() + raw + b")\r\n")
            self.send(f"{tag} OK fetch done\r\n")
        elif sub == "STORE":
            uid_s, _, flags = rest.partition(" ")
            box.flags[int(uid_s)] |= set(re.findall(r"\\\w+", flags))
            self.send(f"{tag} OK store done\r\n")


@pytest.fixture
def imap_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), ImapHandler)
    server.daemon_threads = True
    server.mailbox = Mailbox()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def inbox(cast, imap_server):
    port = imap_server.server_address[1]
    cache.clear()
    return create_inbox(
        actor=cast["admin"], name="Mailbox", kind="email", team=None,
        config={"from_address": "support@shop.example",
                "imap": {"host": "127.0.0.1", "port": port, "ssl": False, "username": "support",
                         "password": "secret", "poll_seconds": 60}},
    )  # fmt: skip


def test_unseen_mail_is_stored_and_flagged_seen_only_after_it_is_stored(inbox, imap_server, monkeypatch):
    box = imap_server.mailbox
    good = box.add((FIXTURES / "gbk_chinese.eml").read_bytes())
    old = box.add((FIXTURES / "html_only.eml").read_bytes(), "\\Seen")  # already read: left alone
    no_from = box.add((FIXTURES / "no_from.eml").read_bytes())
    flaky = box.add((FIXTURES / "unknown_charset.eml").read_bytes())
    last = box.add((FIXTURES / "multipart_attachments.eml").read_bytes())

    real = imap_module.ingest_raw_email

    def ingest(*, inbox, raw):
        if b"<odd-0001@example.org>" in raw:
            raise RuntimeError("database went away")  # one message fails...
        return real(inbox=inbox, raw=raw)

    monkeypatch.setattr(imap_module, "ingest_raw_email", ingest)
    result = poll_inbox(inbox)
    # ...and the rest are still stored
    assert (result.stored, result.duplicates, result.rejected, result.failed) == (2, 0, 1, [str(flaky)])
    assert sorted(Message.objects.values_list("external_id", flat=True)) == [
        "<gbk-0001@mail.example.cn>", "<multi-0001@example.com>",
    ]  # fmt: skip
    assert box.flags[good] == {"\\Seen"} and box.flags[last] == {"\\Seen"}
    assert box.flags[no_from] == {"\\Seen", "\\Flagged"}  # never storable: flagged for a person
    assert box.flags[flaky] == set() and box.flags[old] == {"\\Seen"}
    assert all("BODY.PEEK[]" in c for c in box.log if c.startswith("UID FETCH"))  # fetching marks nothing

    # next poll: only the failed one is fetched again, and now it is stored
    monkeypatch.setattr(imap_module, "ingest_raw_email", real)
    box.log.clear()
    again = poll_inbox(inbox)
    assert (again.stored, again.failed) == (1, [])
    assert [c for c in box.log if c.startswith("UID FETCH")] == [f"UID FETCH {flaky} (BODY.PEEK[])"]
    assert Message.objects.count() == 3 and box.flags[flaky] == {"\\Seen"}


def test_a_message_stored_but_not_flagged_is_not_stored_twice(inbox, imap_server):
    box = imap_server.mailbox
    uid = box.add((FIXTURES / "gbk_chinese.eml").read_bytes())
    poll_inbox(inbox)
    box.flags[uid].clear()  # the flag was lost (crash between commit and STORE)
    result = poll_inbox(inbox)
    assert (result.stored, result.duplicates) == (0, 1) and Message.objects.count() == 1


def test_a_login_failure_is_raised_for_the_task_to_retry(inbox, imap_server):
    config = {**inbox.config, "imap": {**inbox.config["imap"], "password": "wrong"}}
    inbox.config = config
    inbox.save(update_fields=["config"])
    imap_server.mailbox.add((FIXTURES / "gbk_chinese.eml").read_bytes())
    with pytest.raises(imaplib.IMAP4.error, match="bad login"):
        poll_inbox(inbox)
    assert not Message.objects.exists()


def test_the_periodic_task_polls_due_inboxes_only(inbox, imap_server, cast):
    create_inbox(actor=cast["admin"], name="No IMAP", kind="email", team=None,
                 config={"from_address": "x@shop.example"})  # fmt: skip
    imap_server.mailbox.add((FIXTURES / "gbk_chinese.eml").read_bytes())
    poll_email_inboxes.call_local()
    assert Message.objects.count() == 1
    assert due_inboxes() == []  # polled a moment ago; poll_seconds is 60
    cache.clear()
    assert due_inboxes() == [inbox.pk]


def test_an_ssl_mailbox_is_connected_with_certificate_verification(inbox, monkeypatch):
    import ssl

    from ecrm.conversations.channels.email.adapter import ImapSettings

    seen = {}

    class FakeSSL:
        def __init__(self, host, port, *, ssl_context, timeout):
            seen.update(host=host, port=port, context=ssl_context, timeout=timeout)

        def login(self, user, password):
            seen["login"] = user

    monkeypatch.setattr(imaplib, "IMAP4_SSL", FakeSSL)
    imap_module.connect(ImapSettings(host="imap.shop.example", username="support", password="x"))
    assert (seen["host"], seen["port"], seen["login"]) == ("imap.shop.example", 993, "support")
    assert seen["context"].verify_mode == ssl.CERT_REQUIRED and seen["context"].check_hostname is True
