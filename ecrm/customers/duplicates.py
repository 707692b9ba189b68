"""Likely-duplicate detection: pairs of customers that look like one person go to a review queue
with a score and the reasons, never merged automatically."""

from __future__ import annotations

from difflib import SequenceMatcher

from django.db import IntegrityError, transaction

from .models import CandidateStatus, Customer, CustomerStatus, DuplicateCandidate, Identity, IdentityKind


def record_candidate(a_id: int, b_id: int, *, score: float, reasons: list[str]) -> DuplicateCandidate | None:
    """Add (or strengthen) a review-queue entry for a pair; a dismissed pair is not re-opened."""
    if a_id == b_id:
        return None
    lo, hi = sorted((a_id, b_id))
    existing = DuplicateCandidate.objects.filter(customer_a_id=lo, customer_b_id=hi).first()
    if existing is not None:
        if existing.status == CandidateStatus.OPEN and score > existing.score:
            existing.score = score
            existing.reasons = sorted(set(existing.reasons) | set(reasons))
            existing.save(update_fields=["score", "reasons"])
        return existing
    try:
        with transaction.atomic():
            return DuplicateCandidate.objects.create(
                customer_a_id=lo, customer_b_id=hi, score=score, reasons=reasons
            )
    except IntegrityError:
        return DuplicateCandidate.objects.filter(customer_a_id=lo, customer_b_id=hi).first()


def _digits_tail(phone: str | None, n: int = 8) -> str:
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    return digits[-n:] if len(digits) >= n else ""


def _email_local(email: str | None) -> str:
    return (email or "").split("@")[0]


def score_pair(a: dict, b: dict) -> tuple[float, list[str]]:
    """Score how likely two customers are one person. Inputs: name, emails, phones (normalised)."""
    reasons: list[str] = []
    score = 0.0
    same_name = bool(a["name"]) and a["name"] == b["name"]
    if same_name:
        score += 0.45
        reasons.append("same name")
    tails_a = {_digits_tail(p) for p in a["phones"]} - {""}
    tails_b = {_digits_tail(p) for p in b["phones"]} - {""}
    if tails_a & tails_b:
        score += 0.4
        reasons.append("similar phone")
    best_email = 0.0
    for ea in a["emails"]:
        for eb in b["emails"]:
            la, lb = _email_local(ea), _email_local(eb)
            if la and la == lb:
                best_email = max(best_email, 1.0)
            elif la and lb:
                best_email = max(best_email, SequenceMatcher(None, la, lb).ratio())
    if best_email >= 0.85:
        score += 0.4 * best_email
        reasons.append("similar email")
    return min(score, 0.99), reasons


def _profile(customer: Customer) -> dict:
    idents = list(
        Identity.objects.filter(customer=customer, kind__in=[IdentityKind.EMAIL, IdentityKind.PHONE])
    )
    return {
        "name": customer.search_name,
        "emails": {i.value for i in idents if i.kind == IdentityKind.EMAIL} | ({customer.email} - {None}),
        "phones": {i.value for i in idents if i.kind == IdentityKind.PHONE} | ({customer.phone} - {None}),
    }


def find_duplicates_for(
    customer_id: int, *, threshold: float = 0.7, limit: int = 20
) -> list[DuplicateCandidate]:
    """Compare one customer with the customers that share its name or phone tail (blocking keeps
    this to a few indexed look-ups, so it can run on every new customer)."""
    customer = Customer.objects.filter(pk=customer_id, status=CustomerStatus.ACTIVE).first()
    if customer is None:
        return []
    me = _profile(customer)
    pool: set[int] = set()
    if me["name"]:
        pool |= set(
            Customer.objects.filter(search_name=me["name"], status=CustomerStatus.ACTIVE)
            .exclude(pk=customer.pk)
            .values_list("pk", flat=True)[:limit]
        )
    for phone in me["phones"]:
        tail = _digits_tail(phone)
        if tail:
            pool |= set(
                Identity.objects.filter(kind=IdentityKind.PHONE, value__endswith=tail)
                .exclude(customer=customer)
                .values_list("customer_id", flat=True)[:limit]
            )
    found = []
    for other in Customer.objects.filter(pk__in=pool, status=CustomerStatus.ACTIVE):
        score, reasons = score_pair(me, _profile(other))
        if score >= threshold:
            candidate = record_candidate(customer.pk, other.pk, score=round(score, 2), reasons=reasons)
            if candidate is not None:
                found.append(candidate)
    return found


def do_dismiss_candidate(*, candidate: DuplicateCandidate, actor) -> DuplicateCandidate:
    """'Not a duplicate': the pair leaves the queue and is never suggested again."""
    from django.utils import timezone

    from ecrm.core.audit import record_audit
    from ecrm.core.exceptions import Conflict
    from ecrm.core.permissions import check_perm

    check_perm(actor, "customers.merge")
    with transaction.atomic():
        locked = DuplicateCandidate.objects.select_for_update().get(pk=candidate.pk)
        if locked.status != CandidateStatus.OPEN:
            raise Conflict("This pair has already been resolved.", code="already_resolved")
        locked.status, locked.resolved_at, locked.resolved_by = CandidateStatus.DISMISSED, timezone.now(), actor
        locked.save(update_fields=["status", "resolved_at", "resolved_by"])
        record_audit(actor=actor, action="duplicate.dismiss", obj=locked, before={"status": "open"},
                     after={"status": locked.status})
    return locked


def scan_all(*, block: int = 1000, threshold: float = 0.7, progress=None) -> int:
    """Run `find_duplicates_for` over every active customer, a block of ids at a time (keyset, so
    memory stays flat at any table size). Returns the number of pairs found or strengthened."""
    found, after = 0, 0
    while True:
        ids = list(
            Customer.objects.filter(status=CustomerStatus.ACTIVE, pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[:block]
        )
        if not ids:
            return found
        for pk in ids:
            found += len(find_duplicates_for(pk, threshold=threshold))
        after = ids[-1]
        if progress:
            progress(after, found)
