"""Set-based identity resolution for imports: one chunk of rows, each naming a customer by shop
account id, email or phone, resolved with one identity query per kind instead of one per row.

It follows the same rules as `customers.services.resolve_customer` (the one-at-a-time path the API
uses): the most deliberate identifier wins (shop account id, then email, then phone), identities
left on a merged-away profile belong to the survivor, unknown people are created, and an identity
that is new is attached to the customer the row resolved to. Two identities of one row that
already belong to different customers put the pair on the duplicate review queue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from ecrm.customers.duplicates import record_candidate
from ecrm.customers.models import Customer, CustomerStatus, Identity, IdentityKind
from ecrm.customers.normalize import normalize_name

Key = tuple[str, str]
PRECEDENCE = {IdentityKind.EXTERNAL: 0, IdentityKind.EMAIL: 1, IdentityKind.PHONE: 2}


class ChunkResolver:
    """Resolves the identity keys of one chunk's rows to customers.

    `resolve()` returns, per row, either an existing customer's id (int) or a new, unsaved
    `Customer` that the caller may still fill in; `flush()` then inserts the new customers and the
    new identities in bulk. Rows of the same chunk that share an identity get the same customer.
    """

    def __init__(self, *, source: str = "import") -> None:
        self.source = source
        self.new_customers: list[Customer] = []
        self._new_identities: list[Identity] = []

    def resolve(self, rows: Sequence[Sequence[Key]]) -> list[int | Customer]:
        owners = self._existing_owners({key for keys in rows for key in keys})
        assigned: dict[Key, int | Customer] = dict(owners)
        out: list[int | Customer] = []
        for keys in rows:
            ordered = sorted(keys, key=lambda k: PRECEDENCE.get(k[0], 9))
            target: int | Customer | None = None
            for key in ordered:
                if key in assigned:
                    target = assigned[key]
                    break
            if target is None:
                target = self._new_customer(ordered)
            if isinstance(target, int):
                for other in {owners[k] for k in ordered if k in owners} - {target}:
                    record_candidate(target, other, score=0.95, reasons=["shared identity"])
            for key in ordered:
                if key not in assigned:
                    assigned[key] = target
                    self._new_identities.append(self._identity(target, key))
            out.append(target)
        return out

    def flush(self) -> None:
        if self.new_customers:
            Customer.objects.bulk_create(self.new_customers)
        if self._new_identities:
            for identity in self._new_identities:
                # New customers got their primary key from bulk_create just above.
                if identity.customer_id is None:
                    identity.customer_id = identity.customer.pk
            # ignore_conflicts: a concurrent writer (the API) may have attached the same identity
            # meanwhile; it then resolves to that customer next time, as in resolve_customer.
            Identity.objects.bulk_create(self._new_identities, ignore_conflicts=True)
        self.new_customers = []
        self._new_identities = []

    # -------------------------------------------------------------------------------------------
    def _existing_owners(self, keys: set[Key]) -> dict[Key, int]:
        by_kind: dict[str, list[str]] = defaultdict(list)
        for kind, value in keys:
            by_kind[kind].append(value)
        owners: dict[Key, int] = {}
        for kind, values in by_kind.items():
            for value, customer_id in Identity.objects.filter(kind=kind, value__in=values).values_list(
                "value", "customer_id"
            ):
                owners[(kind, value)] = customer_id
        if owners:
            survivors = self._follow_merges(set(owners.values()))
            owners = {key: survivors.get(cid, cid) for key, cid in owners.items()}
        return owners

    @staticmethod
    def _follow_merges(ids: set[int]) -> dict[int, int]:
        """{merged-away id: surviving id} for the ids that were merged into another customer."""
        merged = dict(
            Customer.objects.filter(pk__in=ids, status=CustomerStatus.MERGED, merged_into__isnull=False).values_list(
                "pk", "merged_into_id"
            )
        )
        result: dict[int, int] = {}
        for start, nxt in merged.items():
            seen = {start}
            while True:
                further = Customer.objects.filter(
                    pk=nxt, status=CustomerStatus.MERGED, merged_into__isnull=False
                ).values_list("merged_into_id", flat=True)
                step = further.first()
                if step is None or step in seen:
                    break
                seen.add(nxt)
                nxt = step
            result[start] = nxt
        return result

    def _new_customer(self, keys: list[Key]) -> Customer:
        customer = Customer()
        for kind, value in keys:
            if kind == IdentityKind.EMAIL and not customer.email:
                customer.email = value
            elif kind == IdentityKind.PHONE and not customer.phone:
                customer.phone = value
        self.new_customers.append(customer)
        return customer

    def _identity(self, target: int | Customer, key: Key) -> Identity:
        kind, value = key
        if isinstance(target, int):
            return Identity(customer_id=target, kind=kind, value=value, source=self.source)
        return Identity(customer=target, kind=kind, value=value, source=self.source)


def set_display_name(customer: Customer, name: str) -> None:
    customer.display_name = name[:200]
    customer.search_name = normalize_name(name)[:200]
