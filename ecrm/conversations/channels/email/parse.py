"""Raw RFC 5322 bytes → an `Inbound` for `receive_inbound`, tolerant of what real mail looks like.

Real mail is often wrong: Chinese mail declares gb2312 and uses GBK characters, headers carry raw
8-bit bytes, charsets are misspelt or invented ("x-unknown"), parts are truncated. The rule here is
store what can be read, record what was wrong (`metadata["parse_defects"]`), and never lose the
message; only a message without a usable From address is refused (there is nobody to answer).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from email import errors, message_from_bytes, policy
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

from ecrm.core.exceptions import ValidationFailed

from ...services import Inbound, IncomingAttachment

# gb18030 is a superset of gbk, which is a superset of gb2312: mail that says gb2312 routinely uses
# GBK-only characters (e.g. 镕), so decoding with the superset loses nothing and fixes those.
CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "windows-936": "gb18030",
    "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}
# Fallbacks after the declared charset fails. UTF-8 goes before GB18030 (the brief said the other
# order): a strict UTF-8 decode almost never succeeds on GBK bytes, while GB18030 happily "decodes"
# most UTF-8 Chinese into the wrong characters. latin-1 never fails, so the chain always ends.
FALLBACK_CHARSETS = ("utf-8", "gb18030")

MSGID_RE = re.compile(r"<[^<>\s]{1,298}>")
SUBJECT_REF_RE = re.compile(r"\[#(\d{1,12})\]")
CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
MAX_REFERENCES = 50
# compat32, not policy.default: policy.default turns every header into a parsed object each time it
# is read (get_content_type alone runs the full RFC 5322 header parser), which was two thirds of the
# parsing time; and its encoded-word decoding has no GB fallbacks. Headers are decoded here instead
# (decode_header_value), so compat32 only has to find the MIME structure, which it does the same way.
PARSE_POLICY = policy.compat32


def normalize_charset(name: str | None) -> str | None:
    if not name:
        return None
    name = name.strip().strip('"').lower()
    return CHARSET_ALIASES.get(name, name)


def decode_bytes(data: bytes, charset: str | None, defects: list[str] | None = None) -> str:
    """Decode with the declared charset, then UTF-8, GB18030, and finally latin-1 with replacement."""
    declared = normalize_charset(charset)
    tried = []
    for candidate in (declared, *FALLBACK_CHARSETS):
        if not candidate or candidate in tried:
            continue
        tried.append(candidate)
        try:
            return data.decode(candidate)
        except LookupError:
            if defects is not None:
                defects.append(f"unknown charset {candidate!r}")
        except UnicodeDecodeError:
            continue
    if defects is not None:
        defects.append(f"undecodable text in charset {declared or 'unset'}; decoded as latin-1")
    return data.decode("latin-1", errors="replace")


def decode_header_value(value: str | None, defects: list[str] | None = None) -> str:
    """Decode RFC 2047 encoded words (any charset, with the GB fallbacks) and raw 8-bit headers."""
    if not value:
        return ""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        # 8-bit bytes in a header (not allowed, but common): the parser kept them as surrogates
        value = decode_bytes(value.encode("ascii", "surrogateescape"), None, defects)
    try:
        chunks = decode_header(value)
    except Exception:  # a broken encoded word: keep the text as it came
        if defects is not None:
            defects.append("malformed encoded word in a header")
        return _unfold(value)
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            out.append(chunk.decode("latin-1"))  # decode_header returns unencoded runs as latin-1 bytes
        else:
            out.append(decode_bytes(chunk, charset, defects))
    return _unfold("".join(out))


def _unfold(value: str) -> str:
    return re.sub(r"\s*[\r\n]+\s*", " ", value).strip()


@dataclass
class ParsedEmail:
    """What was read from one raw message, before it becomes an `Inbound`."""

    from_address: str
    from_name: str
    reply_to: str
    to: list[str]
    subject: str
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    sent_at: dt.datetime | None
    body_text: str = ""
    body_html: str = ""
    attachments: list[IncomingAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # decoded, lower-cased names, first value
    content_type: str = ""
    report_parts: list[Message] = field(default_factory=list)  # delivery-status and original headers
    auto: str | None = None  # "autoreply" | "bounce", set by loops.classify
    auto_reason: str = ""
    subject_ref: int | None = None

    @property
    def thread_references(self) -> list[str]:
        """Earlier Message-IDs this answers, oldest first, In-Reply-To last (the closest)."""
        refs = [r for r in self.references if r not in self.in_reply_to] + self.in_reply_to
        return refs[-MAX_REFERENCES:]


def _raw_header(msg: Message, name: str) -> str | None:
    """The raw text of a header (no policy parsing, which can raise on broken values)."""
    lname = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lname:
            return str(value)
    return None


def message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    found = MSGID_RE.findall(value)
    if not found and value.strip() and " " not in value.strip():
        found = [f"<{value.strip().strip('<>')}>"]  # a bare id without brackets
    seen: dict[str, None] = {}
    for mid in found:
        seen[mid] = None
    return list(seen)


def split_name(display_name: str) -> dict[str, str]:
    """Display name → first/last name traits. Chinese names put the family name first ("张伟")."""
    name = display_name.strip().strip('"').strip()
    if not name or "@" in name:
        return {}
    if "," in name:
        last, _, first = name.partition(",")
        return {k: v for k, v in {"first_name": first.strip(), "last_name": last.strip()}.items() if v}
    parts = name.split()
    if len(parts) == 1:
        word = parts[0]
        if CJK_RE.match(word) and 2 <= len(word) <= 4:
            return {"last_name": word[0], "first_name": word[1:]}
        return {"first_name": word[:100]}
    if all(CJK_RE.match(p) for p in parts):
        return {"last_name": parts[0], "first_name": "".join(parts[1:])}
    return {"first_name": " ".join(parts[:-1])[:100], "last_name": parts[-1][:100]}


def _address(raw: str | None, defects: list[str]) -> tuple[str, str]:
    if not raw:
        return "", ""
    name, addr = parseaddr(_unfold(raw))
    addr = addr.strip()
    if "@" not in addr:
        # parseaddr gives up on some broken headers; find an address in the text
        found = re.search(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", raw)
        if not found:
            return decode_header_value(name, defects), ""
        defects.append("malformed From header")
        addr = found.group(0)
    return decode_header_value(name, defects), addr


def parse_email(raw: bytes) -> ParsedEmail:
    """Read one raw message. Raises ValidationFailed only when it cannot be used at all."""
    if not raw or not raw.strip():
        raise ValidationFailed("The message is empty.", fields={"message": "empty"})
    defects: list[str] = []
    msg = message_from_bytes(raw, policy=PARSE_POLICY)
    if any(isinstance(d, errors.MissingHeaderBodySeparatorDefect) for d in msg.defects):
        repaired = _drop_broken_header_lines(raw)
        if repaired != raw:
            # a stray line among the headers made the parser treat the rest (Message-ID, the MIME
            # structure) as body text; without it the message reads as the sender meant it
            defects.append("a header line without a colon was dropped")
            msg = message_from_bytes(repaired, policy=PARSE_POLICY)
    from_name, from_address = _address(_raw_header(msg, "From"), defects)
    if not from_address:
        sender = _raw_header(msg, "Sender")
        from_name, from_address = _address(sender, defects)
    if not from_address:
        raise ValidationFailed(
            "The message has no sender address (From header), so it cannot be answered.",
            fields={"from": "required"},
        )
    reply_to = ""
    reply_raw = _raw_header(msg, "Reply-To")
    if reply_raw:
        _, reply_to = _address(reply_raw, [])
    subject = decode_header_value(_raw_header(msg, "Subject"), defects)
    message_id = (message_ids(_raw_header(msg, "Message-ID")) or [None])[0]
    if message_id is None:
        # Without an id a redelivered message would be stored twice; the content's hash is stable.
        message_id = f"<sha256.{hashlib.sha256(raw).hexdigest()[:40]}@ecrm.invalid>"
        defects.append("no Message-ID; using a hash of the message")
    sent_at = None
    date_raw = _raw_header(msg, "Date")
    if date_raw:
        try:
            sent_at = parsedate_to_datetime(_unfold(date_raw))
            if sent_at.tzinfo is None:
                sent_at = sent_at.replace(tzinfo=dt.UTC)
        except (TypeError, ValueError, IndexError):
            defects.append("unreadable Date header")
    headers: dict[str, str] = {}
    for key, value in msg.raw_items():
        headers.setdefault(key.lower(), decode_header_value(str(value)))
    to = [addr for _, addr in getaddresses([_unfold(_raw_header(msg, "To") or "")]) if "@" in addr]
    subject_ref = SUBJECT_REF_RE.search(subject)
    parsed = ParsedEmail(
        from_address=from_address,
        from_name=from_name,
        reply_to=reply_to if reply_to.lower() != from_address.lower() else "",
        to=to[:20],
        subject=subject,
        message_id=message_id,
        in_reply_to=message_ids(_raw_header(msg, "In-Reply-To"))[:5],
        references=message_ids(_raw_header(msg, "References"))[-MAX_REFERENCES:],
        sent_at=sent_at,
        defects=defects,
        headers=headers,
        content_type=msg.get_content_type(),
        subject_ref=int(subject_ref.group(1)) if subject_ref else None,
    )
    _read_parts(msg, parsed)
    for part in msg.walk():  # after reading: decoding a part records its own defects
        for defect in part.defects:
            defects.append(type(defect).__name__)
    if not (parsed.body_text or parsed.body_html or parsed.attachments):
        parsed.body_text = "(no text)"  # an empty mail is still a message from this person
    return parsed


def _drop_broken_header_lines(raw: bytes) -> bytes:
    match = re.search(rb"\r?\n\r?\n", raw)
    if not match:
        return raw
    head, rest = raw[: match.start()], raw[match.start() :]
    lines = re.split(rb"(?<=\n)", head)
    kept = [ln for ln in lines if ln[:1] in (b" ", b"\t") or re.match(rb"^[!-9;-~]+:", ln)]
    return b"".join(kept) + rest


def _read_parts(msg: Message, parsed: ParsedEmail) -> None:
    texts: list[str] = []
    htmls: list[str] = []
    _walk(msg, parsed, texts, htmls, depth=0)
    parsed.body_text = "\n\n".join(t for t in texts if t.strip()).strip()
    parsed.body_html = "\n<hr>\n".join(h for h in htmls if h.strip())


def _walk(part: Message, parsed: ParsedEmail, texts: list[str], htmls: list[str], depth: int) -> None:
    if depth > 20:
        parsed.defects.append("MIME nesting too deep; inner parts skipped")
        return
    ctype = part.get_content_type()
    if ctype in ("message/delivery-status", "text/rfc822-headers", "message/disposition-notification"):
        parsed.report_parts.append(part)
        return
    if part.is_multipart() and ctype != "message/rfc822":
        subparts = part.get_payload()
        if not isinstance(subparts, list):
            return
        if ctype == "multipart/alternative":
            # one body, several renderings: keep the plain text and the HTML, once each
            plain = [p for p in subparts if p.get_content_type() == "text/plain" and not _is_attachment(p)]
            html = [p for p in subparts if p.get_content_type() == "text/html" and not _is_attachment(p)]
            others = [p for p in subparts if p not in plain and p not in html]
            if plain:
                texts.append(_text_of(plain[-1], parsed))
            if html:
                htmls.append(_text_of(html[-1], parsed))
            for sub in others:
                _walk(sub, parsed, texts, htmls, depth + 1)
            return
        for sub in subparts:
            _walk(sub, parsed, texts, htmls, depth + 1)
        return
    if ctype == "message/rfc822" and parsed.content_type == "multipart/report":
        parsed.report_parts.append(part)  # the bounced original: its Message-ID finds our reply
    if not _is_attachment(part) and ctype in ("text/plain", "text/html"):
        (texts if ctype == "text/plain" else htmls).append(_text_of(part, parsed))
        return
    if ctype.startswith("multipart/"):
        return
    content = _payload_bytes(part, parsed)
    if content is None:
        return
    filename = _filename(part, parsed) or _default_name(ctype, len(parsed.attachments) + 1)
    parsed.attachments.append(IncomingAttachment(filename=filename, content_type=ctype, content=content))


def _is_attachment(part: Message) -> bool:
    disposition = str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    if disposition == "attachment":
        return True
    try:
        return part.get_param("filename", header="content-disposition") is not None or (
            part.get_param("name") is not None and part.get_content_maintype() not in ("text",)
        )
    except Exception:
        return False


def _payload_bytes(part: Message, parsed: ParsedEmail) -> bytes | None:
    try:
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                return inner[0].as_bytes(policy=policy.default.clone(linesep="\r\n"))
            return None
        before = len(part.defects)
        data = part.get_payload(decode=True)
        if any(isinstance(d, errors.InvalidBase64LengthDefect) for d in part.defects[before:]):
            data = _salvage_base64(part)
    except Exception as exc:  # a broken transfer encoding: keep going with the other parts
        parsed.defects.append(f"unreadable part {part.get_content_type()}: {type(exc).__name__}")
        return None
    return data if isinstance(data, bytes) else None


def _salvage_base64(part: Message) -> bytes:
    """The stdlib returns broken base64 undecoded; decode what is valid (a truncated attachment)."""
    payload = part.get_payload(decode=False)
    text = re.sub(r"[^A-Za-z0-9+/]", "", payload if isinstance(payload, str) else "")
    return base64.b64decode(text[: len(text) - len(text) % 4])


def _text_of(part: Message, parsed: ParsedEmail) -> str:
    data = _payload_bytes(part, parsed)
    if data is None:
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data, charset, parsed.defects).replace("\r\n", "\n")


def _filename(part: Message, parsed: ParsedEmail) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        return ""
    if isinstance(name, str) and ("=?" in name or any("\udc80" <= ch <= "\udcff" for ch in name)):
        name = decode_header_value(name, parsed.defects)
    return name


def _default_name(ctype: str, n: int) -> str:
    ext = {"message/rfc822": "eml", "image/png": "png", "image/jpeg": "jpg", "application/pdf": "pdf"}.get(
        ctype, "bin"
    )
    return f"attachment-{n}.{ext}"


def to_inbound(parsed: ParsedEmail, inbox: Any) -> Inbound:
    """The `Inbound` for `receive_inbound`: From is the identity; Reply-To is where answers go."""
    metadata: dict[str, Any] = {"email": {"from": parsed.from_address}}
    if parsed.reply_to:
        metadata["email"]["reply_to"] = parsed.reply_to
    if parsed.to:
        metadata["email"]["to"] = parsed.to
    if parsed.thread_references:
        metadata["email"]["references"] = parsed.thread_references[-20:]
    if parsed.defects:
        metadata["parse_defects"] = sorted(set(parsed.defects))[:50]
    if parsed.auto:
        metadata["auto"] = parsed.auto
        metadata["auto_reason"] = parsed.auto_reason
    return Inbound(
        inbox=inbox,
        identities=[("email", parsed.from_address)],
        body_text=parsed.body_text,
        body_html=parsed.body_html,
        subject=parsed.subject,
        external_id=parsed.message_id,
        references=parsed.thread_references,
        sent_at=parsed.sent_at,
        traits=split_name(parsed.from_name),
        attachments=parsed.attachments,
        metadata=metadata,
    )
