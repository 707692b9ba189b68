"""Console pages: the editor saves a rule from form fields (no JSON), shows field-level errors next to
the rows, re-renders rows over htmx, runs a dry run; list ordering and switches; the run log,
tasks and notifications pages; YAML download and upload; permissions."""

from __future__ import annotations

import io

import pytest

from ecrm.service.services import do_create_ticket
from ecrm.workflows.models import Notification, Rule, Task
from ecrm.workflows.services import do_reorder_rules

from .factories import customer, rule, team_with


@pytest.fixture
def ops(cast):
    return team_with("Ops", "manager")


FORM = {
    "name": "Escalate VIP complaints",
    "description": "VIP or urgent complaints go to Ops",
    "triggers": ["ticket.created", "ticket.updated"],
    "schedule_every": "60",
    "match": "all",
    "c-0-group": "0", "c-0-field": "ticket.type", "c-0-op": "eq", "c-0-value": "complaint",
    "g-1-match": "any",
    "c-1-group": "1", "c-1-field": "customer.tags", "c-1-op": "contains", "c-1-value": "vip",
    "c-2-group": "1", "c-2-field": "ticket.priority", "c-2-op": "in", "c-2-value": "high, urgent",
    "c-3-group": "0", "c-3-field": "", "c-3-op": "eq", "c-3-value": "",  # an empty row is ignored
    "a-0-type": "notify_team", "a-0-team": "Ops", "a-0-message": "VIP complaint {{ ticket.reference }}",
    "a-1-type": "create_task", "a-1-title": "Call {{ customer.name }}", "a-1-due_in": "4h", "a-1-team": "Ops",
    "a-1-assignee": "", "a-1-description": "",
    "is_active": "on",
}  # fmt: skip


def test_the_editor_saves_a_rule_from_form_fields(login, ops):
    client = login("admin")
    assert client.get("/workflows/new/").status_code == 200
    r = client.post("/workflows/new/", FORM)
    assert r.status_code == 302, r.content.decode()[:2000]
    saved = Rule.objects.get()
    assert saved.triggers == ["ticket.created", "ticket.updated"]
    assert saved.conditions == {
        "all": [
            {"field": "ticket.type", "op": "eq", "value": "complaint"},
            {"any": [{"field": "customer.tags", "op": "contains", "value": "vip"},
                     {"field": "ticket.priority", "op": "in", "value": ["high", "urgent"]}]},
        ]
    }  # fmt: skip
    assert saved.actions == [
        {"type": "notify_team", "team": "Ops", "message": "VIP complaint {{ ticket.reference }}"},
        {"type": "create_task", "title": "Call {{ customer.name }}", "description": "", "due_in": "4h", "team": "Ops",
         "assignee": ""},
    ]  # fmt: skip
    assert saved.is_active and not saved.stop_processing
    # the saved rule opens in the editor with the same rows
    page = client.get(f"/workflows/{saved.pk}/").content.decode()
    assert 'name="c-2-value" value="high, urgent"' in page
    assert 'name="g-1-match"' in page and 'value="Call {{ customer.name }}"' in page
    # and saving it unchanged keeps it equal
    r = client.post(f"/workflows/{saved.pk}/", {**FORM})
    assert r.status_code == 302
    assert Rule.objects.get().conditions == saved.conditions


def test_the_editor_shows_errors_next_to_their_rows_and_saves_nothing(login, ops):
    client = login("admin")
    bad = {**FORM, "c-1-op": "gt", "a-0-team": "", "c-0-value": ""}
    r = client.post("/workflows/new/", bad)
    assert r.status_code == 422
    page = r.content.decode()
    assert not Rule.objects.exists()
    row1 = page[page.index('id="cond-1"') : page.index('id="cond-2"')]
    assert "op: gt does not apply to a tags field" in row1
    row0 = page[page.index('id="cond-0"') : page.index('id="cond-1"')]
    assert "value: a value is required" in row0
    action0 = page[page.index('id="action-0"') : page.index('id="action-1"')]
    assert "choose a team" in action0


def test_htmx_rows_and_dry_run(login, cast, ops):
    client = login("admin")
    r = client.get("/workflows/editor/condition/", {"add": "1", "group": "0", "next_row": "7"})
    html = r.content.decode()
    assert 'name="c-7-field"' in html and 'id="next-row" name="next_row" value="8" hx-swap-oob="true"' in html
    # choosing a field re-renders the row with that field's operators and values
    r = client.get(
        "/workflows/editor/condition/", {"i": "7", "c-7-field": "ticket.priority", "c-7-group": "0"}
    )
    html = r.content.decode()
    assert '<option value="urgent"' in html and 'value="gt"' not in html and "hx-swap-oob" not in html
    r = client.get("/workflows/editor/action/", {"i": "2", "a-2-type": "send_email"})
    html = r.content.decode()
    assert 'name="a-2-subject"' in html and 'name="a-2-body"' in html and 'name="a-2-team"' not in html
    buyer = customer()
    hit = do_create_ticket(
        actor=cast["agent_li"], customer=buyer, subject="Broken", type="complaint", priority="high"
    )
    do_create_ticket(actor=cast["agent_li"], customer=buyer, subject="Fine", type="complaint")
    r = client.post("/workflows/dry-run/", FORM)
    html = r.content.decode()
    assert 'data-matched="1" data-checked="2"' in html and f'data-subject="ticket:{hit.pk}"' in html
    assert not Rule.objects.exists()


def test_list_order_switch_and_permissions(login, cast, ops):
    a, b = rule("A"), rule("B")
    client = login("admin")
    assert client.post(f"/workflows/{b.pk}/move/", {"direction": "up"}).status_code == 302
    assert list(Rule.objects.order_by("position").values_list("name", flat=True)) == ["B", "A"]
    client.post(f"/workflows/{a.pk}/active/", {"active": "0"})
    a.refresh_from_db()
    assert a.is_active is False
    page = client.get("/workflows/").content.decode()
    assert page.index(f'data-rule="{b.pk}"') < page.index(f'data-rule="{a.pk}"')
    manager = login("manager")
    assert manager.get("/workflows/").status_code == 200
    assert manager.post(f"/workflows/{b.pk}/move/", {"direction": "down"}).status_code == 403
    assert manager.post("/workflows/new/", FORM).status_code == 403
    assert manager.post(f"/workflows/{b.pk}/", FORM).status_code == 403
    assert list(Rule.objects.order_by("position").values_list("name", flat=True)) == ["B", "A"]
    agent = login("agent_li")
    assert agent.get("/workflows/").status_code == 403
    assert agent.get("/workflows/runs/").status_code == 403
    do_reorder_rules(actor=cast["admin"], rule_ids=[a.pk, b.pk])


def test_run_log_tasks_and_notifications_pages(login, cast, ops, django_capture_on_commit_callbacks,
                                                django_assert_max_num_queries):  # fmt: skip
    rule("Ops task", actions=[{"type": "create_task", "title": "Check {{ ticket.reference }}", "team": "Ops"},
                              {"type": "notify_team", "team": "Ops", "message": "see {{ ticket.reference }}"}])  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        tickets = [do_create_ticket(actor=cast["agent_li"], customer=customer(f"c{i}", f"c{i}@x.cn"), subject="x")
                   for i in range(5)]  # fmt: skip
    client = login("manager")
    with django_assert_max_num_queries(12):
        page = client.get("/workflows/runs/").content.decode()
    assert page.count('data-status="done"') == 5
    page = client.get(
        "/workflows/runs/", {"subject_type": "ticket", "subject_id": tickets[0].pk}
    ).content.decode()
    assert page.count("data-run=") == 1
    with django_assert_max_num_queries(12):
        page = client.get("/workflows/tasks/").content.decode()
    assert page.count("data-task=") == 5
    task = Task.objects.order_by("id").first()
    assert client.post(f"/workflows/tasks/{task.pk}/done/").status_code == 302
    task.refresh_from_db()
    assert task.status == "done" and task.done_by == cast["manager"]
    page = client.get("/workflows/notifications/").content.decode()
    assert page.count('class="unread"') == 5 and f"see {tickets[0].reference}" in page
    client.post("/workflows/notifications/")
    assert Notification.objects.filter(read_at__isnull=True).count() == 0
    # an agent outside Ops sees no Ops tasks and cannot close one
    agent = login("agent_bob")
    assert agent.get("/workflows/tasks/").content.decode().count("data-task=") == 0
    other = Task.objects.filter(status="open").first()
    assert agent.post(f"/workflows/tasks/{other.pk}/done/").status_code == 403
    other.refresh_from_db()
    assert other.status == "open"


def test_yaml_download_and_upload(login, ops):
    rule("Exported", actions=[{"type": "notify_team", "team": "Ops", "message": "hi"}])
    client = login("admin")
    r = client.get("/workflows/export.yaml")
    assert r["Content-Disposition"] == 'attachment; filename="ecrm-workflows.yaml"'
    text = r.content.decode()
    Rule.objects.all().delete()
    upload = io.BytesIO(text.replace("team: Ops", "team: Nope").encode())
    upload.name = "rules.yaml"
    r = client.post("/workflows/import/", {"file": upload})
    assert r.status_code == 422 and "no team named &#x27;Nope&#x27;" in r.content.decode()
    assert not Rule.objects.exists()
    upload = io.BytesIO(text.encode())
    upload.name = "rules.yaml"
    assert client.post("/workflows/import/", {"file": upload}).status_code == 302
    assert Rule.objects.get().name == "Exported"
