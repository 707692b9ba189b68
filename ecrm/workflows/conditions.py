"""Condition trees: validated once on save (field-level errors), compiled once into closures.

    {"all": [
        {"field": "ticket.priority", "op": "in", "value": ["high", "urgent"]},
        {"any": [{"field": "customer.tags", "op": "contains", "value": "vip"},
                 {"field": "customer.score.churn_band", "op": "eq", "value": "high"}]}]}

An empty tree matches everything. `compile_tree` turns a tree into one function `ctx -> bool`
that does no parsing at run time: values are coerced, regexes compiled and sets built up front.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from .fields import MISSING, OPS_BY_TYPE, Context, Field, ref_name, resolve_field

Test = Callable[[Context], bool]
MAX_DEPTH = 6
MAX_REGEX = 200
MAX_MATCH_INPUT = 2_000
# A group that repeats a repeated thing ("(a+)+", "(x*)*", "(ab|a)+{2,}"): the shape of catastrophic
# backtracking. Refused on save; Python's re has no timeout.
NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()]*)\)\s*[+*{]")
NO_VALUE_OPS = ("is_set", "is_empty", "changed")
DURATION = re.compile(r"^\s*(\d{1,5})\s*([mhdw])\s*$")
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class PlainError(ValueError):
    """A value error whose message is shown as it is (not as "must be ...")."""


class ConditionError(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def parse_duration(text: Any) -> dt.timedelta:
    m = DURATION.match(str(text or ""))
    if not m:
        raise ValueError(_("must be a duration like 30m, 12h, 3d or 2w"))
    return dt.timedelta(**{DURATION_UNITS[m.group(2)]: int(m.group(1))})


def _as_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    text = str(value or "").strip()
    parsed = parse_datetime(text)
    if parsed is None:
        day = parse_date(text)
        if day is None:
            raise ValueError(_("must be a date (2026-12-01) or date and time (2026-12-01T09:00)"))
        parsed = dt.datetime.combine(day, dt.time.min)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


def _coerce(field: Field, value: Any) -> Any:
    """One condition value in the type of `field` (ValueError with a message on a bad value)."""
    kind = field.type
    if kind == "number":
        if isinstance(value, bool):
            raise ValueError(_("must be a number"))
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(_("must be a number")) from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        raise ValueError(_("must be true or false"))
    if kind == "datetime":
        return _as_datetime(value)
    if value is None or isinstance(value, dict | list):
        raise ValueError(_("must be a single value"))
    text = str(value).strip()
    if kind == "choice" and field.choices and text not in field.choices:
        raise ValueError(_("must be one of %(choices)s") % {"choices": ", ".join(field.choices)})
    if kind == "ref" and text:
        from ecrm.core.models import Team, User

        model, attr, what = (Team, "name", "team") if field.ref == "team" else (User, "username", "user")
        if not model.objects.filter(**{attr: text}).exists():
            raise ValueError(
                (_("no team named %(name)r") if what == "team" else _("no user named %(name)r"))
                % {"name": text}
            )
    if kind in ("tags",):
        return text.lower()
    if kind == "any":
        return value if isinstance(value, int | float | bool) else text
    return text


def _listify(value: Any) -> list:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [value]


def validate_tree(tree: Any, namespaces: tuple[str, ...] | None = None) -> dict:
    """The tree with values coerced to JSON-friendly canonical form; ConditionError with
    {"conditions.all.0.value": "..."} paths on any problem."""
    errors: dict[str, str] = {}
    clean = _validate(tree or {}, "conditions", 0, namespaces, errors)
    if errors:
        raise ConditionError(errors)
    return clean


def _validate(node: Any, path: str, depth: int, namespaces, errors: dict) -> Any:
    if not isinstance(node, dict):
        errors[path] = _("must be a group {all: [...]} / {any: [...]} or a condition {field, op, value}")
        return None
    if not node:
        return {}
    groups = [k for k in ("all", "any") if k in node]
    if groups:
        if len(node) != 1:
            errors[path] = _("a group has exactly one key, all or any")
            return None
        key = groups[0]
        items = node[key]
        if depth >= MAX_DEPTH:
            errors[path] = _("nested deeper than %(n)s groups") % {"n": MAX_DEPTH}
            return None
        if not isinstance(items, list):
            errors[f"{path}.{key}"] = _("must be a list")
            return None
        return {
            key: [
                _validate(item, f"{path}.{key}.{i}", depth + 1, namespaces, errors)
                for i, item in enumerate(items)
            ]
        }
    return _validate_leaf(node, path, namespaces, errors)


def _validate_leaf(node: dict, path: str, namespaces, errors: dict) -> dict | None:
    extra = set(node) - {"field", "op", "value"}
    if extra:
        errors[path] = _("unknown keys: %(keys)s") % {"keys": ", ".join(sorted(extra))}
        return None
    name = str(node.get("field") or "").strip()
    op = str(node.get("op") or "").strip()
    field = resolve_field(name) if name else None
    if not name:
        errors[f"{path}.field"] = _("choose a field")
        return None
    if field is None:
        errors[f"{path}.field"] = _("unknown field %(name)r") % {"name": name}
        return None
    namespace = name.split(".", 1)[0]
    if namespaces is not None and namespace not in namespaces:
        errors[f"{path}.field"] = _("%(namespace)s fields are not available for this rule's triggers") % {
            "namespace": namespace
        }
        return None
    allowed = OPS_BY_TYPE[field.type]
    if op not in allowed:
        errors[f"{path}.op"] = _("%(op)s does not apply to a %(type)s field; use one of %(ops)s") % {
            "op": op or "(none)", "type": field.type, "ops": ", ".join(allowed),
        }  # fmt: skip
        return None
    if op.startswith("changed") and not field.change_keys:
        errors[f"{path}.op"] = _("changes of this field are not reported by events")
        return None
    out = {"field": name, "op": op}
    if op in NO_VALUE_OPS:
        return out
    raw = node.get("value")
    try:
        if op in ("in", "not_in"):
            values = _listify(raw)
            if not values:
                raise PlainError(_("at least one value"))
            coerced = [_coerce(field, v) for v in values]
            out["value"] = [_jsonable(v) for v in coerced]
        elif op in ("within_last", "older_than"):
            parse_duration(raw)
            out["value"] = str(raw).strip()
        elif op == "matches":
            pattern = str(raw or "")
            if not pattern or len(pattern) > MAX_REGEX:
                raise ValueError(
                    _("must be a regular expression of 1 to %(n)s characters") % {"n": MAX_REGEX}
                )
            if NESTED_QUANTIFIER.search(pattern):
                raise PlainError(_("nested repetition such as (a+)+ is not allowed: it can take forever"))
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(_("not a valid regular expression: %(error)s") % {"error": exc}) from None
            out["value"] = pattern
        elif op in ("gt", "gte", "lt", "lte") and field.type == "any":
            out["value"] = _coerce(Field("number", ""), raw) if _numeric(raw) else _coerce(field, raw)
        else:
            if raw is None or raw == "":
                raise PlainError(_("a value is required"))
            out["value"] = _jsonable(_coerce(field, raw))
    except ValueError as exc:
        errors[f"{path}.value"] = str(exc)
        return None
    return out


def _numeric(value: Any) -> bool:
    try:
        float(value)
        return not isinstance(value, bool)
    except (TypeError, ValueError):
        return False


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def fields_used(tree: Any) -> list[str]:
    if not isinstance(tree, dict):
        return []
    for key in ("all", "any"):
        if key in tree:
            return [f for item in tree[key] for f in fields_used(item)]
    return [tree["field"]] if "field" in tree else []


# --- compiling ------------------------------------------------------------------------------------


def compile_tree(tree: Any) -> Test:
    """`ctx -> bool` for a validated tree."""
    if not tree:
        return _always
    if "all" in tree:
        parts = tuple(compile_tree(item) for item in tree["all"])
        if not parts:
            return _always
        if len(parts) == 1:
            return parts[0]

        def all_of(ctx: Context) -> bool:
            for part in parts:
                if not part(ctx):
                    return False
            return True

        return all_of
    if "any" in tree:
        parts = tuple(compile_tree(item) for item in tree["any"])
        if not parts:
            return _never

        def any_of(ctx: Context) -> bool:
            for part in parts:
                if part(ctx):
                    return True
            return False

        return any_of
    return _shared(tree, _compile_leaf(tree))


# The same condition in many rules ("status changed to closed", "type is complaint") is evaluated once
# per event: each distinct leaf gets a number, and the context remembers its result.
_LEAF_IDS: dict[str, int] = {}


def _shared(leaf: dict, test: Test) -> Test:
    key = json.dumps(leaf, sort_keys=True, default=str)
    leaf_id = _LEAF_IDS.setdefault(key, len(_LEAF_IDS))

    def remembered(ctx: Context) -> bool:
        memo = ctx.memo
        result = memo.get(leaf_id)
        if result is None:
            result = memo[leaf_id] = test(ctx)
        return result

    return remembered


def _always(ctx: Context) -> bool:
    return True


def _never(ctx: Context) -> bool:
    return False


def _is_empty(v: Any) -> bool:
    return v is None or v == "" or (isinstance(v, frozenset | set | list | dict | tuple) and not v)


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _compile_leaf(leaf: dict) -> Test:
    path, op, raw = leaf["field"], leaf["op"], leaf.get("value")
    field = resolve_field(path)
    if field is None:  # a custom attribute deleted since the rule was saved: never matches
        return _never
    kind = field.type
    get = _getter(path)

    if op == "is_set":
        return lambda ctx: not _is_empty(get(ctx))
    if op == "is_empty":
        return lambda ctx: _is_empty(get(ctx))
    if op in ("changed", "changed_to", "changed_from"):
        keys = field.change_keys
        if op == "changed":
            return lambda ctx: ctx.change(keys, path) is not None
        index = 1 if op == "changed_to" else 0
        want = _runtime_value(kind, raw)
        ref = field.ref

        def changed_test(ctx: Context) -> bool:
            pair = ctx.change(keys, path)
            if pair is None:
                return False
            value = pair[index]
            if ref:
                value = ref_name(ref, value)
            return _equal(kind, value, want)

        return changed_test
    if op in ("in", "not_in"):
        wanted = frozenset(_key(kind, _runtime_value(kind, v)) for v in raw)
        if op == "in":
            return lambda ctx: _key(kind, get(ctx)) in wanted
        return lambda ctx: _key(kind, get(ctx)) not in wanted
    if op in ("eq", "ne") and kind in ("text", "choice", "ref", "bool"):
        want = raw

        def plain_eq(ctx: Context) -> bool:
            v = ctx.values.get(path, MISSING)
            if v is MISSING:
                v = ctx.get(path)
            return (v == want) is (op == "eq")

        return plain_eq
    if op in ("eq", "ne"):
        want = _runtime_value(kind, raw)
        if op == "eq":
            return lambda ctx: _equal(kind, get(ctx), want)
        return lambda ctx: not _equal(kind, get(ctx), want)
    if op in ("contains", "not_contains"):
        needle = str(raw).lower()

        def contains(ctx: Context) -> bool:
            v = get(ctx)
            if v is None:
                return False
            if isinstance(v, frozenset | set | list | tuple):
                return needle in {str(x).lower() for x in v}
            return needle in str(v).lower()

        if op == "contains":
            return contains
        return lambda ctx: not contains(ctx)
    if op == "matches":
        rx = re.compile(raw)
        return lambda ctx: (v := get(ctx)) is not None and rx.search(str(v)[:MAX_MATCH_INPUT]) is not None
    if op in ("within_last", "older_than"):
        delta = parse_duration(raw)

        def age_test(ctx: Context) -> bool:
            v = get(ctx)
            if isinstance(v, str):
                v = parse_datetime(v)
            if not isinstance(v, dt.datetime):
                return False
            cutoff = timezone.now() - delta
            return v >= cutoff if op == "within_last" else v < cutoff

        return age_test
    if op in ("gt", "gte", "lt", "lte"):
        cmp = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}[op]
        if kind == "datetime" or (kind == "any" and not _numeric(raw)):
            limit = _as_datetime(raw)
            dcmp = {"gt": dt.datetime.__gt__, "gte": dt.datetime.__ge__, "lt": dt.datetime.__lt__,
                    "lte": dt.datetime.__le__}[op]  # fmt: skip

            def date_test(ctx: Context) -> bool:
                v = get(ctx)
                if isinstance(v, str):
                    v = parse_datetime(v)
                return isinstance(v, dt.datetime) and dcmp(v, limit)

            return date_test
        limit_n = float(raw)

        def num_test(ctx: Context) -> bool:
            v = _num(get(ctx))
            return v is not None and cmp(v, limit_n)

        return num_test
    raise ValueError(f"unknown operator {op}")


def _getter(path: str) -> Callable[[Context], Any]:
    def get(ctx: Context) -> Any:
        v = ctx.values.get(path, MISSING)
        return ctx.get(path) if v is MISSING else v

    return get


def _runtime_value(kind: str, raw: Any) -> Any:
    if kind == "number":
        return _num(raw)
    if kind == "datetime":
        return _as_datetime(raw)
    return raw


def _key(kind: str, v: Any) -> Any:
    if kind == "number" or (kind == "any" and _numeric(v)):
        return _num(v)
    if kind == "any" and v is not None:
        return str(v)
    return v


def _equal(kind: str, v: Any, want: Any) -> bool:
    if kind == "number":
        n = _num(v)
        return n is not None and n == want
    if kind == "any":
        if _numeric(v) and _numeric(want):
            return float(v) == float(want)
        return v is not None and str(v) == str(want)
    return v == want
