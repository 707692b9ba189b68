"""The import pages, driven the way a user drives them: upload, mapping, preview, dry run, run,
progress and the error report."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ecrm.commerce.models import Order
from ecrm.core.models import AuditLog
from ecrm.customers.models import Customer
from ecrm.ingest.importing import services
from ecrm.ingest.models import ImportJob, ImportStatus

DATA = Path(__file__).parent / "data"


def upload(client, kind: str, name: str, content: bytes | None = None):
    content = (DATA / name).read_bytes() if content is None else content
    return client.post(
        reverse("ingest:imports"), {"kind": kind, "file": SimpleUploadedFile(name, content, "text/csv")}
    )


@pytest.mark.django_db
def test_full_flow_upload_mapping_preview_run_and_job_page(login):
    client = login("manager")
    content = b"Ref,Buyer,When,Sum,Notes\nW-1,wu@example.com,2024-02-01 10:00,88.5,hello\nW-2,,2024-02-02,9,\nW-3,li@example.com,2024-02-03,12,\n"
    response = upload(client, "orders", "weekly.csv", content)
    job = ImportJob.objects.get()
    # 'Ref', 'Buyer', 'When', 'Sum' are not known names: the user maps them.
    assert response.status_code == 302
    assert response["Location"] == reverse("ingest:import_mapping", args=[job.pk])
    assert job.header == ["Ref", "Buyer", "When", "Sum", "Notes"]
    assert job.mapping == {"Ref": "", "Buyer": "", "When": "", "Sum": "", "Notes": ""}

    page = client.get(response["Location"])
    assert page.status_code == 200
    assert '<select name="col_0"' in page.content.decode()

    # An incomplete mapping is refused with the missing fields named.
    response = client.post(response["Location"], {"col_0": "order_id", "col_1": "email"})
    assert response.status_code == 400
    assert "Map a column to: Placed at, Total" in response.content.decode()

    response = client.post(
        reverse("ingest:import_mapping", args=[job.pk]),
        {"col_0": "order_id", "col_1": "email", "col_2": "placed_at", "col_3": "total", "col_4": ""},
    )
    assert response["Location"] == reverse("ingest:import_preview", args=[job.pk])
    job.refresh_from_db()
    assert job.mapping == {"Ref": "order_id", "Buyer": "email", "When": "placed_at", "Sum": "total", "Notes": ""}

    preview = client.get(response["Location"])
    html = preview.content.decode()
    assert preview.status_code == 200
    assert preview.context["columns"] == ["Order number", "Customer email", "Placed at", "Total"]
    rows = preview.context["rows"]
    assert [(r.row_no, r.error) for r in rows] == [
        (2, ""),
        (3, "no customer_id, email or phone to say whose order this is"),
        (4, ""),
    ]
    assert rows[0].values == ["W-1", "wu@example.com", "2024-02-01 10:00:00+00:00", "88.50"]
    assert "1 of them would be refused." in html
    assert Order.objects.count() == 0  # previewing writes nothing

    response = client.post(reverse("ingest:import_run", args=[job.pk]), {"dry_run": "0"})
    assert response["Location"] == reverse("ingest:import_job", args=[job.pk])
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.imported_rows, job.created_rows, job.failed_rows) == (
        ImportStatus.DONE, 3, 2, 2, 1
    )  # fmt: skip
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["W-1", "W-3"]
    assert Order.objects.get(external_id="W-1").total == Decimal("88.50")

    page = client.get(response["Location"])
    html = page.content.decode()
    assert '<span class="figure-value" id="fig-processed">3</span>' in html
    assert '<span class="figure-value" id="fig-imported">2</span>' in html
    assert '<span class="figure-value" id="fig-refused">1</span>' in html
    assert "<td class=\"num\">3</td><td>no customer_id, email or phone to say whose order this is</td>" in html
    assert 'hx-trigger="every 1s"' not in html  # finished: no more polling

    # Done is done: the same job cannot be imported twice.
    client.post(reverse("ingest:import_run", args=[job.pk]), {"dry_run": "0"})
    assert Order.objects.count() == 2
    assert AuditLog.objects.filter(action="import.run").count() == 1
    audit = AuditLog.objects.get(action="import.run")
    assert (audit.actor_label, audit.after["created"], audit.after["refused"]) == ("manager", 2, 1)


@pytest.mark.django_db
def test_a_file_whose_header_names_the_fields_skips_the_mapping_step(login):
    client = login("admin")
    response = upload(client, "orders", "orders.csv")
    job = ImportJob.objects.get()
    assert response["Location"] == reverse("ingest:import_preview", args=[job.pk])
    assert job.mapping == {
        "order_id": "order_id", "customer_id": "customer_id", "placed_at": "placed_at", "total": "total",
        "currency": "currency",
    }  # fmt: skip
    page = client.get(response["Location"])
    assert [r.error for r in page.context["rows"]] == ["", "", "total: 'not-a-number' is not a number", ""]


@pytest.mark.django_db
def test_dry_run_from_the_page_writes_nothing_then_runs_for_real(login):
    client = login("manager")
    upload(client, "orders", "orders.csv")
    job = ImportJob.objects.get()

    client.post(reverse("ingest:import_run", args=[job.pk]), {"dry_run": "1"})
    job.refresh_from_db()
    assert (job.dry_run, job.status, job.imported_rows, job.failed_rows) == (True, ImportStatus.DONE, 3, 1)
    assert Order.objects.count() == 0 and Customer.objects.count() == 0
    assert not AuditLog.objects.filter(action="import.run").exists()
    html = client.get(reverse("ingest:import_job", args=[job.pk])).content.decode()
    assert "Dry run finished: nothing was written." in html
    assert "Would be imported" in html

    client.post(reverse("ingest:import_run", args=[job.pk]), {"dry_run": "0"})
    job.refresh_from_db()
    assert (job.dry_run, job.imported_rows, job.failed_rows) == (False, 3, 1)
    assert Order.objects.count() == 3


@pytest.mark.django_db
def test_error_report_download_lists_refused_rows_neutralised(login):
    client = login("manager")
    upload(client, "products", "products.csv")
    job = ImportJob.objects.get()
    client.post(reverse("ingest:import_run", args=[job.pk]), {"dry_run": "0"})
    html = client.get(reverse("ingest:import_job", args=[job.pk])).content.decode()
    assert reverse("ingest:import_errors", args=[job.pk]) in html

    response = client.get(reverse("ingest:import_errors", args=[job.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert 'filename="products-refused-rows.csv"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(body))) == [
        ["row", "reason", "sku", "name", "category", "price", "currency"],
        ["4", "sku: \"=cmd|' /C calc'!A0\" is a new product and needs a name", "'=cmd|' /C calc'!A0", "", "Home", "10", "CNY"],
    ]


@pytest.mark.django_db
def test_no_error_report_when_nothing_was_refused(login):
    client = login("manager")
    upload(client, "orders", "orders_aliases.csv")
    job = ImportJob.objects.get()
    client.post(reverse("ingest:import_run", args=[job.pk]), {"dry_run": "0"})
    job.refresh_from_db()
    assert (job.imported_rows, job.failed_rows, job.error_file.name) == (2, 0, "")
    assert client.get(reverse("ingest:import_errors", args=[job.pk])).status_code == 404


@pytest.mark.django_db
def test_large_file_runs_in_the_background_and_the_page_polls_progress(login, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(services, "INLINE_BYTES", 10)
    client = login("manager")
    upload(client, "orders", "orders.csv")
    job = ImportJob.objects.get()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(reverse("ingest:import_run", args=[job.pk]), {"dry_run": "0"})
    job.refresh_from_db()
    assert job.status == ImportStatus.QUEUED and len(callbacks) == 1
    assert Order.objects.count() == 0
    partial = client.get(reverse("ingest:import_progress", args=[job.pk]))
    html = partial.content.decode()
    progress_url = reverse("ingest:import_progress", args=[job.pk])
    assert html.startswith(f'<div id="import-progress" hx-get="{progress_url}" hx-trigger="every 1s"')
    assert "Queued" in html
    assert "<html" not in html  # a fragment for htmx, not a page

    callbacks[0]()  # the worker picks the job up (Huey runs it at once in tests)
    job.refresh_from_db()
    assert (job.status, job.imported_rows, job.failed_rows) == (ImportStatus.DONE, 3, 1)
    html = client.get(reverse("ingest:import_progress", args=[job.pk])).content.decode()
    assert 'hx-trigger' not in html
    assert '<span class="figure-value" id="fig-imported">3</span>' in html


@pytest.mark.django_db
def test_upload_limit_and_unreadable_files_get_a_clear_message(login, monkeypatch):
    client = login("manager")
    monkeypatch.setattr(services, "MAX_UPLOAD_BYTES", 100)
    response = upload(client, "orders", "big.csv", b"order_id,total\n" + b"A-1,1\n" * 40)
    assert response.status_code == 400
    assert "The file is 255\xa0bytes; the limit for uploads is 100\xa0bytes." in response.content.decode()
    monkeypatch.setattr(services, "MAX_UPLOAD_BYTES", 10_000)
    response = upload(client, "orders", "image.csv", b"\x89PNG\r\n\x1a\n\x00\x00")
    assert response.status_code == 400
    assert "This is not a CSV file (it contains binary data)." in response.content.decode()
    assert ImportJob.objects.count() == 0


@pytest.mark.django_db
def test_import_list_shows_jobs_with_bounded_queries(login, django_assert_max_num_queries):
    client = login("manager")
    for _ in range(3):
        upload(client, "orders", "orders.csv")
    with django_assert_max_num_queries(8):
        response = client.get(reverse("ingest:imports"))
    assert response.status_code == 200
    assert [j.original_name for j in response.context["page"]] == ["orders.csv"] * 3
    assert response.content.decode().count("Not imported yet") == 3


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["agent_li", "marketer", "analyst", "nobody"])
def test_roles_without_imports_run_are_refused_and_nothing_is_imported(login, cast, who):
    client = login(who)
    response = upload(client, "orders", "orders.csv")
    assert response.status_code == 403
    assert ImportJob.objects.count() == 0 and Order.objects.count() == 0
    assert client.get(reverse("ingest:imports")).status_code == 403

    # Nor can they run, preview or read someone else's job.
    from ecrm.ingest.importing.services import do_create_import_job

    job = do_create_import_job(
        kind="orders", upload=SimpleUploadedFile("orders.csv", (DATA / "orders.csv").read_bytes()), actor=cast["manager"]
    )
    for name in ("import_job", "import_preview", "import_progress", "import_mapping", "import_errors"):
        assert client.get(reverse(f"ingest:{name}", args=[job.pk])).status_code == 403, name
    assert client.post(reverse("ingest:import_run", args=[job.pk]), {"dry_run": "0"}).status_code == 403
    job.refresh_from_db()
    assert job.status == ImportStatus.UPLOADED
    assert Order.objects.count() == 0 and Customer.objects.count() == 0


@pytest.mark.django_db
def test_service_refuses_agent_too(cast):
    from ecrm.core.exceptions import PermissionDenied
    from ecrm.ingest.importing.services import do_create_import_job

    with pytest.raises(PermissionDenied):
        do_create_import_job(kind="orders", upload=SimpleUploadedFile("o.csv", b"order_id\n1\n"), actor=cast["agent_bob"])
    assert ImportJob.objects.count() == 0


@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get(reverse("ingest:imports"))
    assert response.status_code == 302 and "/login" in response["Location"]
