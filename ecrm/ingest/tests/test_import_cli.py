"""`manage.py import`: the command-line path of CSV import, through the real command."""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ecrm.commerce.models import Order, OrderLine, OrderStatusChange, Product
from ecrm.core.models import AuditLog
from ecrm.customers.models import CustomAttributeDefinition, Customer, Identity
from ecrm.ingest.models import ImportJob, ImportStatus

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data(tmp_path):
    """A copy of the fixture files (the command writes its error report next to the file)."""
    for f in DATA.glob("*.csv"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def run(kind: str, path: Path, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import", kind, str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_orders_file_with_one_bad_row_imports_the_good_rows_and_reports_the_bad_one(data):
    out, err = run("orders", data / "orders.csv")

    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["SO-1", "SO-2", "SO-4"]
    so1 = Order.objects.select_related("customer").get(external_id="SO-1")
    assert so1.total == Decimal("199.00") and so1.currency == "CNY"
    assert so1.placed_at.isoformat() == "2024-03-01T10:15:00+00:00"
    so2 = Order.objects.get(external_id="SO-2")
    assert so2.placed_at.isoformat() == "2024-03-02T00:00:00+00:00"  # +08:00 converted
    # Unknown customers were created and carry the shop account id as an external identity.
    assert Identity.objects.get(kind="external", value="C-1001").customer_id == so1.customer_id
    assert Order.objects.get(external_id="SO-4").customer_id == Identity.objects.get(value="C-2001").customer_id
    assert Customer.objects.count() == 3
    assert OrderStatusChange.objects.filter(to_status="paid", from_status="").count() == 3

    assert "4 rows read, imported 3 (3 new, 0 updated), refused 1" in out
    report = data / "orders.errors.csv"
    assert f"Error report: {report}" in out
    assert "importing orders from orders.csv (utf-8)" in err
    with open(report, encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows == [
        ["row", "reason", "order_id", "customer_id", "placed_at", "total", "currency"],
        ["4", "total: 'not-a-number' is not a number", "SO-3", "C-2001", "2024-03-03", "not-a-number", "CNY"],
    ]
    job = ImportJob.objects.get()
    assert (job.status, job.processed_rows, job.imported_rows, job.failed_rows) == (ImportStatus.DONE, 4, 3, 1)
    assert job.errors == [{"row": 4, "error": "total: 'not-a-number' is not a number"}]
    # One audit entry for the whole import, not one per row.
    audit = AuditLog.objects.get(action="import.run")
    assert audit.actor_label == "system"
    assert audit.after == {"kind": "orders", "file": str(data / "orders.csv"), "rows": 4, "created": 3,
                           "updated": 0, "refused": 1, "status": "done"}  # fmt: skip
    assert AuditLog.objects.count() == 1


@pytest.mark.django_db
def test_reimporting_the_same_orders_file_updates_instead_of_duplicating(data):
    run("orders", data / "orders.csv")
    first_ids = dict(Order.objects.values_list("external_id", "pk"))
    (data / "orders.csv").write_text(
        (data / "orders.csv").read_text().replace("SO-1,C-1001,2024-03-01 10:15:00,199.00", "SO-1,C-1001,2024-03-01 10:15:00,149.00")
    )
    out, _ = run("orders", data / "orders.csv")

    assert "imported 3 (0 new, 3 updated), refused 1" in out
    assert Order.objects.count() == 3
    assert dict(Order.objects.values_list("external_id", "pk")) == first_ids
    assert Order.objects.get(external_id="SO-1").total == Decimal("149.00")
    assert Customer.objects.count() == 3
    assert Identity.objects.filter(kind="external").count() == 3


@pytest.mark.django_db
def test_dry_run_validates_everything_and_writes_nothing(data):
    out, _ = run("orders", data / "orders.csv", "--dry-run")

    assert out.startswith("Dry run: 4 rows read, would import 3 (3 new, 0 updated), refused 1")
    assert Order.objects.count() == 0
    assert Customer.objects.count() == 0
    assert Identity.objects.count() == 0
    assert OrderStatusChange.objects.count() == 0
    assert not AuditLog.objects.filter(action="import.run").exists()
    job = ImportJob.objects.get()
    assert (job.dry_run, job.imported_rows, job.failed_rows) == (True, 3, 1)


@pytest.mark.django_db
def test_alias_headers_map_without_a_mapping_step(data):
    out, err = run("orders", data / "orders_aliases.csv")

    assert ("columns: Order Number→order_id, Customer Email→email, Order Date→placed_at, Amount→total, "
            "Currency→currency, Status→status, Shipping City→shipping_city") in err  # fmt: skip
    assert "imported 2 (2 new, 0 updated), refused 0" in out
    a100, a101 = Order.objects.order_by("external_id")
    assert (a100.total, a100.status, a100.currency, a100.shipping_city) == (Decimal("1299.00"), "shipped", "CNY", "Hangzhou")
    assert (a101.total, a101.status) == (Decimal("88.80"), "completed")
    # Both emails normalise to one address, so both orders belong to one customer.
    assert a100.customer_id == a101.customer_id
    assert Customer.objects.get().email == "dora@example.com"


@pytest.mark.django_db
def test_customers_file_imports_profiles_tags_and_refuses_a_bad_date(data):
    out, _ = run("customers", data / "customers.csv")

    assert "3 rows read, imported 2 (2 new, 0 updated), refused 1" in out
    alice = Customer.objects.get(identities__kind="external", identities__value="C-1001")
    assert (alice.display_name, alice.email, alice.phone) == ("Alice Wong", "alice.wong@example.com", "+8613800138000")
    assert (alice.city, alice.country, alice.gender, alice.birthday.isoformat(), alice.lifecycle_stage) == (
        "Shanghai", "CN", "female", "1990-04-12", "customer"
    )
    assert sorted(alice.tags.values_list("name", flat=True)) == ["newsletter", "vip"]
    assert sorted(alice.identities.values_list("kind", "value")) == [
        ("email", "alice.wong@example.com"), ("external", "C-1001"), ("phone", "+8613800138000")
    ]  # fmt: skip
    bob = Customer.objects.get(email="bob@example.com")
    assert sorted(bob.tags.values_list("name", flat=True)) == ["vip", "wholesale"]
    assert not Customer.objects.filter(email="carol@example.com").exists()
    assert "4,birthday: '1985-13-40' is not a date (use YYYY-MM-DD)" in (data / "customers.errors.csv").read_text(
        encoding="utf-8-sig"
    )


@pytest.mark.django_db
def test_customers_reimport_matches_by_identity_and_updates_profile(data):
    run("customers", data / "customers.csv")
    (data / "again.csv").write_text("email,city,tags\nALICE.WONG@example.com,Suzhou,loyal\n")
    out, _ = run("customers", data / "again.csv")

    assert "imported 1 (0 new, 1 updated)" in out
    assert Customer.objects.count() == 2
    alice = Customer.objects.get(email="alice.wong@example.com")
    assert alice.city == "Suzhou"
    assert alice.display_name == "Alice Wong"
    assert sorted(alice.tags.values_list("name", flat=True)) == ["loyal", "newsletter", "vip"]


@pytest.mark.django_db
def test_gbk_encoded_customers_file_imports_chinese_names(data):
    out, err = run("customers", data / "customers_gbk.csv")

    assert "(gb18030)" in err
    assert "columns: 客户编号→customer_id, 姓名→name, 手机→phone, 城市→city, 性别→gender, 标签→tags" in err
    assert "imported 2 (2 new, 0 updated), refused 0" in out
    wang = Customer.objects.get(identities__kind="external", identities__value="W-1")
    assert (wang.display_name, wang.phone, wang.city, wang.gender) == ("王小明", "+8613800138001", "杭州", "male")
    assert sorted(wang.tags.values_list("name", flat=True)) == ["会员", "老客户"]
    assert Customer.objects.get(phone="+8613800138002").display_name == "李娜"


@pytest.mark.django_db
def test_custom_attribute_columns_match_definitions_by_key(data):
    CustomAttributeDefinition.objects.create(key="loyalty_points", label="Loyalty points", type="number")
    CustomAttributeDefinition.objects.create(key="vip_since", label="VIP since", type="date")
    (data / "attrs.csv").write_text("email,loyalty_points,vip_since\na@example.com,120,2023-01-05\nb@example.com,lots,\n")
    out, _ = run("customers", data / "attrs.csv")

    assert "imported 1 (1 new, 0 updated), refused 1" in out
    assert Customer.objects.get(email="a@example.com").custom_attributes == {"loyalty_points": 120, "vip_since": "2023-01-05"}
    assert "3,'loyalty_points' must be a number" in (data / "attrs.errors.csv").read_text(encoding="utf-8-sig")


@pytest.mark.django_db
def test_order_lines_need_their_order_and_create_unknown_products(data):
    run("orders", data / "orders.csv")
    out, _ = run("order_lines", data / "order_lines.csv")

    assert "4 rows read, imported 3 (3 new, 0 updated), refused 1" in out
    lines = list(OrderLine.objects.filter(order__external_id="SO-1").values_list("line_no", "sku", "quantity", "unit_price", "line_total"))
    assert lines == [(1, "SKU-KNIFE", Decimal("1.000"), Decimal("149.00"), Decimal("149.00")),
                     (2, "SKU-BOARD", Decimal("2.000"), Decimal("25.00"), Decimal("50.00"))]  # fmt: skip
    assert dict(Product.objects.values_list("sku", "name")) == {"SKU-KNIFE": "Chef knife", "SKU-BOARD": "Cutting board"}
    assert Product.objects.get(sku="SKU-BOARD").price == Decimal("25.00")
    assert OrderLine.objects.filter(product__isnull=True).count() == 0
    assert "5,order_id: order 'SO-404' not found (import the orders first)" in (data / "order_lines.errors.csv").read_text(
        encoding="utf-8-sig"
    )
    # The same file again updates the lines rather than adding them twice.
    out, _ = run("order_lines", data / "order_lines.csv")
    assert "imported 3 (0 new, 3 updated), refused 1" in out
    assert OrderLine.objects.count() == 3


@pytest.mark.django_db
def test_products_import_and_refused_sku_is_neutralised_in_the_report(data):
    out, _ = run("products", data / "products.csv")

    assert "3 rows read, imported 2 (2 new, 0 updated), refused 1" in out
    knife = Product.objects.get(sku="SKU-KNIFE")
    assert (knife.name, knife.category_path, knife.price, knife.currency) == ("Chef knife", "Home/Kitchen/Knives", Decimal("149.00"), "CNY")
    with open(data / "products.errors.csv", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows[1][0] == "4"
    assert rows[1][2] == "'=cmd|' /C calc'!A0"  # a formula in a spreadsheet without the apostrophe


@pytest.mark.django_db
def test_mapping_option_overrides_the_suggestion(data):
    (data / "odd.csv").write_text("ref,who,when,sum\nX-1,x@example.com,2024-01-02,10\n")
    out, _ = run("orders", data / "odd.csv", "--mapping", "ref=order_id", "who=email", "when=placed_at", "sum=total")

    assert "imported 1 (1 new, 0 updated), refused 0" in out
    assert Order.objects.get(external_id="X-1").customer.email == "x@example.com"


@pytest.mark.django_db
def test_a_mapping_missing_a_required_field_is_an_error(data):
    (data / "odd.csv").write_text("ref,who,when\nX-1,x@example.com,2024-01-02\n")
    with pytest.raises(CommandError, match="Map a column to: Order number, Placed at, Total"):
        run("orders", data / "odd.csv")
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_unreadable_file_exits_non_zero(data):
    (data / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(CommandError, match="not a CSV file"):
        run("orders", data / "binary.csv")
    with pytest.raises(CommandError, match="Cannot read"):
        run("orders", data / "missing.csv")


@pytest.mark.django_db
def test_chunks_commit_separately_and_progress_is_reported(data, monkeypatch):
    from ecrm.ingest.importing import runner

    monkeypatch.setattr(runner, "CHUNK_SIZE", 2)
    rows = "\n".join(f"O-{i},c{i}@example.com,2024-01-01,{i}" for i in range(1, 8))
    (data / "many.csv").write_text("order_id,email,placed_at,total\n" + rows + "\nO-8,bad-email,2024-01-01,1\n")
    out, err = run("orders", data / "many.csv")

    assert "8 rows read, imported 7 (7 new, 0 updated), refused 1" in out
    assert "rows/s" in out
    assert Order.objects.count() == 7
    assert "9,email: 'bad-email' is not a valid email address" in (data / "many.errors.csv").read_text(encoding="utf-8-sig")
    assert "100%" in err  # the tqdm bar on stderr reached the end
