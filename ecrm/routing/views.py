"""Console pages of routing (thin: parse, call a selector or service, render): the live queue
dashboard, agents' skills and capacity, queues, settings, and the presence switch in the header."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.models import Team
from ecrm.core.permissions import has_perm
from ecrm.core.web import console_view

from . import selectors
from .models import CAPACITY_CHANNELS, Policy, Presence, Queue, RoutingSettings
from .services import (
    do_delete_queue,
    do_save_queue,
    do_set_presence,
    do_update_profile,
    do_update_settings,
    ensure_profile,
    get_settings,
    touch_activity,
)


@console_view("routing.view")
def dashboard(request: HttpRequest) -> HttpResponse:
    context = selectors.dashboard(request.user)
    template = (
        "routing/partials/_dashboard.html" if request.headers.get("HX-Request") else "routing/dashboard.html"
    )
    return render(request, template, context)


@console_view("routing.view")
def agents(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "routing/agents.html",
        {
            "rows": selectors.agent_rows(request.user),
            "can_configure": has_perm(request.user, "routing.configure"),
        },
    )


def _skills_text(skills: dict) -> str:
    return "\n".join(f"{k}={v}" for k, v in sorted((skills or {}).items()))


@console_view("routing.configure")
def agent_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    agent = selectors.access_agent_for_user(request.user, user_id)
    profile = ensure_profile(agent)
    error = None
    if request.method == "POST":
        capacity = {c: request.POST.get(f"capacity_{c}", "0") or "0" for c in CAPACITY_CHANNELS}
        try:
            do_update_profile(
                actor=request.user, user=agent, skills=request.POST.get("skills", ""), capacity=capacity,
                routable=request.POST.get("routable") == "1",
            )  # fmt: skip
            messages.success(request, _("Saved."))
            return redirect("routing:agents")
        except ValidationFailed as exc:
            error = exc
    capacity_rows = [
        (c, request.POST.get(f"capacity_{c}", profile.capacity.get(c, 0))) for c in CAPACITY_CHANNELS
    ]
    return render(
        request,
        "routing/agent_edit.html",
        {
            "agent": agent, "profile": profile, "error": error, "capacity_rows": capacity_rows,
            "skills_text": request.POST.get("skills", _skills_text(profile.skills)),
        },
        status=422 if error else 200,
    )  # fmt: skip


@console_view("routing.configure")
def settings_page(request: HttpRequest) -> HttpResponse:
    current = get_settings()
    error = None
    if request.method == "POST":
        changes: dict = {
            "policy": request.POST.get("policy", ""),
            "enabled": request.POST.get("enabled") == "1",
        }
        for name in RoutingSettings.WEIGHT_FIELDS:
            changes[f"weight_{name}"] = request.POST.get(f"weight_{name}", "")
        for key in ("no_response_minutes", "idle_away_minutes", "idle_offline_minutes"):
            changes[key] = request.POST.get(key, "")
        try:
            do_update_settings(actor=request.user, changes=changes)
            messages.success(request, _("Saved."))
            return redirect("routing:settings")
        except ValidationFailed as exc:
            error = exc
    weights = [
        (name, _weight_label(name), request.POST.get(f"weight_{name}", getattr(current, f"weight_{name}")))
        for name in RoutingSettings.WEIGHT_FIELDS
    ]
    return render(
        request,
        "routing/settings.html",
        {
            "settings": current,
            "policies": Policy.choices,
            "weights": weights,
            "error": error,
            "form": request.POST,
        },
        status=422 if error else 200,
    )


def _weight_label(name: str) -> str:
    from .explain import factor_label

    return factor_label(name)


@console_view("routing.view")
def queues(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        try:
            do_save_queue(actor=request.user, data=_queue_data(request))
            messages.success(request, _("Saved."))
            return redirect("routing:queues")
        except ValidationFailed as exc:
            error = exc
    return render(
        request,
        "routing/queues.html",
        {
            "rows": selectors.queue_rows(request.user), "teams": list(Team.objects.order_by("name")),
            "channels": CAPACITY_CHANNELS, "error": error, "form": request.POST,
            "can_configure": has_perm(request.user, "routing.configure"),
        },
        status=422 if error else 200,
    )  # fmt: skip


def _queue_data(request: HttpRequest) -> dict:
    from .services.profiles import parse_skills

    skills_text = request.POST.get("required_skills", "")
    try:
        skills = parse_skills(skills_text)
    except ValidationFailed as exc:
        raise ValidationFailed(
            exc.message, fields={"required_skills": exc.fields.get("skills", "")}
        ) from None
    return {
        "name": request.POST.get("name", ""), "priority": request.POST.get("priority", "0"),
        "team": request.POST.get("team") or None, "channels": request.POST.getlist("channels"),
        "sla_minutes": request.POST.get("sla_minutes", "30"), "required_skills": skills,
        "is_active": request.POST.get("is_active", "1") == "1",
    }  # fmt: skip


@console_view("routing.configure")
def queue_edit(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = Queue.objects.filter(pk=queue_id).first()
    if queue is None:
        raise NotFound(_("No such queue."))
    error = None
    if request.method == "POST":
        if request.POST.get("delete") == "1":
            do_delete_queue(actor=request.user, queue_id=queue.pk)
            messages.success(request, _("Deleted."))
            return redirect("routing:queues")
        try:
            do_save_queue(actor=request.user, data=_queue_data(request), queue=queue)
            messages.success(request, _("Saved."))
            return redirect("routing:queues")
        except ValidationFailed as exc:
            error = exc
    return render(
        request,
        "routing/queue_edit.html",
        {
            "queue": queue, "teams": list(Team.objects.order_by("name")), "channels": CAPACITY_CHANNELS,
            "skills_text": _skills_text(queue.required_skills), "error": error,
        },
        status=422 if error else 200,
    )  # fmt: skip


@console_view("conversations.reply")
def presence(request: HttpRequest) -> HttpResponse:
    """GET: the header's presence switch (loaded by htmx on every console page, which also counts as
    the agent's activity). POST: set it."""
    if request.method == "POST":
        do_set_presence(actor=request.user, user=request.user, presence=request.POST.get("presence", ""))
        if not request.headers.get("HX-Request"):
            back = request.POST.get("next") or ""
            if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
                back = "/"
            return redirect(back)
    else:
        touch_activity(request.user.pk)
    return render(
        request,
        "routing/partials/_presence.html",
        {"presence": selectors.my_presence(request.user), "choices": Presence.choices},
    )
