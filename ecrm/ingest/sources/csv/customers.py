"""Customers from a CSV: identities (shop account id, email, phone), profile fields, tags and
custom attribute columns named after the attribute's key."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Q

from ecrm.customers.models import (
    CustomAttributeDefinition,
    Customer,
    CustomerTag,
    Gender,
    IdentityKind,
    LifecycleStage,
    Tag,
)
from ecrm.customers.normalize import InvalidIdentifier, display_name, normalize_email, normalize_phone
from ecrm.customers.services import coerce_attribute

from ..base import ChunkResult, CleanRow, Field, Importer, RowRefused, parse_date, parse_text
from ..customer_resolution import ChunkResolver, set_display_name

CUSTOM_PREFIX = "custom."

GENDER_ALIASES = {
    "f": Gender.FEMALE, "female": Gender.FEMALE, "woman": Gender.FEMALE, "女": Gender.FEMALE,
    "m": Gender.MALE, "male": Gender.MALE, "man": Gender.MALE, "男": Gender.MALE,
    "other": Gender.OTHER, "其他": Gender.OTHER, "unknown": Gender.UNKNOWN, "": Gender.UNKNOWN,
}  # fmt: skip
_TAG_SPLIT = re.compile(r"[;|]")


def customer_keys(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The identity keys a clean row names, most deliberate first."""
    keys = []
    if data.get("customer_id"):
        keys.append((IdentityKind.EXTERNAL, data["customer_id"]))
    if data.get("email"):
        keys.append((IdentityKind.EMAIL, data["email"]))
    if data.get("phone"):
        keys.append((IdentityKind.PHONE, data["phone"]))
    return keys


def clean_customer_ref(values: dict[str, str], out: dict[str, Any]) -> None:
    """Shared by customers and orders: customer_id, email and phone, normalised."""
    if values.get("customer_id"):
        external = values["customer_id"].strip()
        if len(external) > 254:
            raise RowRefused("customer_id: longer than 254 characters")
        out["customer_id"] = external
    try:
        if values.get("email"):
            out["email"] = normalize_email(values["email"])
        if values.get("phone"):
            out["phone"] = normalize_phone(values["phone"])
    except InvalidIdentifier as exc:
        field = "email" if "email" in str(exc) else "phone"
        raise RowRefused(f"{field}: {exc}") from None


class CustomersImporter(Importer):
    kind = "customers"
    fields = (
        Field("customer_id", "Customer ID (shop account)", ("customer_external_id", "external_id", "member_id", "user_id", "客户编号", "会员id", "会员编号")),
        Field("email", "Email", ("e_mail", "email_address", "customer_email", "邮箱", "电子邮件")),
        Field("phone", "Phone", ("mobile", "phone_number", "tel", "telephone", "customer_phone", "手机", "手机号", "电话")),
        Field("first_name", "First name", ("firstname", "given_name", "名")),
        Field("last_name", "Last name", ("lastname", "surname", "family_name", "姓")),
        Field("name", "Full name", ("full_name", "customer_name", "display_name", "姓名", "客户姓名", "名称")),
        Field("birthday", "Birthday", ("birth_date", "date_of_birth", "dob", "生日")),
        Field("gender", "Gender", ("sex", "性别")),
        Field("locale", "Locale", ("language",)),
        Field("city", "City", ("城市",)),
        Field("country", "Country (ISO code)", ("country_code", "国家")),
        Field("lifecycle_stage", "Lifecycle stage", ("stage", "lifecycle")),
        Field("tags", "Tags (separated by ; or |)", ("tag", "labels", "标签")),
    )  # fmt: skip
    one_of = (("customer_id", "email", "phone"),)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.definitions = {d.key: d for d in CustomAttributeDefinition.objects.all()}

    @classmethod
    def available_fields(cls) -> list[Field]:
        custom = [
            Field(f"{CUSTOM_PREFIX}{d.key}", f"{d.label} (custom)", (d.key, d.label))
            for d in CustomAttributeDefinition.objects.order_by("key")
        ]
        return [*cls.fields, *custom]

    def clean(self, values: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        clean_customer_ref(values, out)
        if not out:
            raise RowRefused("no customer_id, email or phone to identify the customer")
        for name in ("first_name", "last_name", "city", "locale"):
            if values.get(name):
                out[name] = parse_text(values[name], max_length=100 if name != "locale" else 16)
        if values.get("name"):
            out["name"] = parse_text(values["name"], max_length=200)
        if values.get("birthday"):
            out["birthday"] = parse_date(values["birthday"], label="birthday")
        if values.get("gender"):
            gender = GENDER_ALIASES.get(values["gender"].strip().lower())
            if gender is None:
                raise RowRefused(f"gender: {values['gender']!r} must be female, male or other")
            out["gender"] = gender
        if values.get("country"):
            country = values["country"].strip().upper()
            if len(country) != 2 or not country.isalpha():
                raise RowRefused(f"country: {values['country']!r} must be a two-letter ISO code such as CN")
            out["country"] = country
        if values.get("lifecycle_stage"):
            stage = values["lifecycle_stage"].strip().lower()
            if stage not in LifecycleStage.values:
                raise RowRefused(
                    f"lifecycle_stage: {values['lifecycle_stage']!r} must be one of {', '.join(LifecycleStage.values)}"
                )
            out["lifecycle_stage"] = stage
        if values.get("tags"):
            tags = [" ".join(t.split())[:64] for t in _TAG_SPLIT.split(values["tags"])]
            out["tags"] = [t for t in dict.fromkeys(tags) if t]
        custom = {}
        for key, raw in values.items():
            if key.startswith(CUSTOM_PREFIX) and raw.strip():
                definition = self.definitions.get(key[len(CUSTOM_PREFIX) :])
                if definition is None:
                    continue  # deleted since the mapping was made
                try:
                    custom[definition.key] = coerce_attribute(definition, raw.strip())
                except ValueError as exc:
                    raise RowRefused(str(exc)) from None
        if custom:
            out["custom_attributes"] = custom
        return out

    def write(self, rows: list[CleanRow]) -> ChunkResult:
        resolver = ChunkResolver(source=self.source)
        targets = resolver.resolve([customer_keys(r.data) for r in rows])
        existing = Customer.objects.in_bulk({t for t in targets if isinstance(t, int)})
        result = ChunkResult()
        changed_fields: set[str] = set()
        dirty: dict[int, Customer] = {}
        tag_links: list[tuple[Customer, str]] = []
        seen_new: set[int] = set()
        for row, target in zip(rows, targets, strict=True):
            customer = existing[target] if isinstance(target, int) else target
            if isinstance(target, int):
                result.updated += 1
            elif id(target) in seen_new:
                result.updated += 1  # a second row for a customer created earlier in this chunk
            else:
                seen_new.add(id(target))
                result.created += 1
            changed = _apply_profile(customer, row.data)
            if isinstance(target, int) and changed:
                changed_fields |= changed
                dirty[customer.pk] = customer
            tag_links += [(customer, name) for name in row.data.get("tags", [])]
        resolver.flush()
        if dirty:
            Customer.objects.bulk_update(list(dirty.values()), [*sorted(changed_fields), "updated_at"], batch_size=500)
        _link_tags(tag_links)
        return result


def _apply_profile(customer: Customer, data: dict[str, Any]) -> set[str]:
    """Set the row's values on the customer (an import overwrites what it names, and leaves the
    rest); returns the fields changed."""
    changed: set[str] = set()
    for name in ("email", "phone", "first_name", "last_name", "birthday", "gender", "locale", "city", "country",
                 "lifecycle_stage"):  # fmt: skip
        if name in data and getattr(customer, name) != data[name]:
            setattr(customer, name, data[name])
            changed.add(name)
    if "custom_attributes" in data:
        merged = {**(customer.custom_attributes or {}), **data["custom_attributes"]}
        merged = {k: v for k, v in merged.items() if v is not None}
        if merged != customer.custom_attributes:
            customer.custom_attributes = merged
            changed.add("custom_attributes")
    if "name" in data:
        name = data["name"]
    elif {"first_name", "last_name"} & changed or not customer.display_name:
        name = display_name(customer.first_name, customer.last_name) or customer.display_name
    else:
        name = customer.display_name
    if name and name != customer.display_name:
        set_display_name(customer, name)
        changed |= {"display_name", "search_name"}
    if changed:
        from django.utils import timezone

        customer.updated_at = timezone.now()
    return changed


def _link_tags(links: list[tuple[Customer, str]]) -> None:
    if not links:
        return
    names = {name for _, name in links}
    tags = dict(Tag.objects.filter(name__in=names).values_list("name", "pk"))
    missing = [Tag(name=n) for n in names if n not in tags]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        tags.update(Tag.objects.filter(name__in=[t.name for t in missing]).values_list("name", "pk"))
    pairs = {(customer.pk, tags[name]) for customer, name in links}
    have = set(
        CustomerTag.objects.filter(Q(customer_id__in={c for c, _ in pairs}), Q(tag_id__in={t for _, t in pairs}))
        .values_list("customer_id", "tag_id")
    )
    CustomerTag.objects.bulk_create(
        [CustomerTag(customer_id=c, tag_id=t) for c, t in pairs - have], batch_size=500, ignore_conflicts=True
    )
