"""Signed tokens for the chat widget. Nothing the browser sends is trusted unsigned: a visitor session
token names the inbox, the chat session (the conversation's thread key) and who the visitor said they
are; a customer token (issued by the portal) names a signed-in customer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.core import signing

from ecrm.core.exceptions import EcrmError

CUSTOMER_SALT = "ecrm.chat.customer"
SESSION_SALT = "ecrm.chat.session"
CUSTOMER_TOKEN_MAX_AGE = 24 * 3600  # the portal renders a fresh one with every page
SESSION_TOKEN_MAX_AGE = 30 * 24 * 3600  # a visitor may come back to the same chat for a month


class BadToken(EcrmError):
    code = "bad_token"
    status = 401


def sign_customer(customer_id: int) -> str:
    """The `data-customer-token` a portal page puts on the widget's script tag."""
    return signing.dumps({"c": int(customer_id)}, salt=CUSTOMER_SALT, compress=True)


def verify_customer(token: str) -> int:
    try:
        data = signing.loads(token, salt=CUSTOMER_SALT, max_age=CUSTOMER_TOKEN_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise BadToken("The sign-in for the chat has expired; reload the page.") from exc
    except signing.BadSignature as exc:
        raise BadToken("The customer token is not valid.") from exc
    return int(data["c"])


@dataclass(frozen=True)
class ChatSession:
    """Who is chatting, on which inbox, in which chat session (thread key `chat:<session_id>`)."""

    session_id: str
    inbox_id: int
    anonymous_id: str = ""
    name: str = ""
    email: str = ""
    customer_id: int | None = None

    @property
    def thread_key(self) -> str:
        return f"chat:{self.session_id}"


def new_session_id() -> str:
    return secrets.token_urlsafe(16)


def sign_session(session: ChatSession) -> str:
    payload = {"s": session.session_id, "i": session.inbox_id, "a": session.anonymous_id,
               "n": session.name, "e": session.email, "c": session.customer_id}  # fmt: skip
    return signing.dumps(payload, salt=SESSION_SALT, compress=True)


def verify_session(token: str) -> ChatSession:
    if not token or not isinstance(token, str) or len(token) > 2000:
        raise BadToken("A chat session token is required.")
    try:
        data = signing.loads(token, salt=SESSION_SALT, max_age=SESSION_TOKEN_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise BadToken("The chat session has expired; start a new chat.") from exc
    except signing.BadSignature as exc:
        raise BadToken("The chat session token is not valid.") from exc
    return ChatSession(
        session_id=data["s"], inbox_id=int(data["i"]), anonymous_id=data.get("a") or "",
        name=data.get("n") or "", email=data.get("e") or "", customer_id=data.get("c"),
    )  # fmt: skip
