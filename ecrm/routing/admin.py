"""Back-office views of routing (read-mostly: writes go through the console and the services)."""

from django.contrib import admin

from .models import AgentProfile, Assignment, Queue, RoutingSettings, WorkItem


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "presence", "presence_changed_at", "last_activity_at", "routable")
    list_filter = ("presence", "routable")
    readonly_fields = ("presence", "presence_changed_at", "presence_source", "last_activity_at")


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ("name", "priority", "team", "sla_minutes", "is_active")


@admin.register(WorkItem)
class WorkItemAdmin(admin.ModelAdmin):
    list_display = (
        "kind",
        "object_id",
        "status",
        "channel",
        "queue",
        "priority",
        "enqueued_at",
        "sla_due_at",
    )
    list_filter = ("status", "kind", "channel")
    readonly_fields = [f.name for f in WorkItem._meta.fields]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("work_item", "agent", "policy", "score", "assigned_at", "ended_at", "end_reason")
    list_filter = ("policy", "end_reason")
    readonly_fields = [f.name for f in Assignment._meta.fields]


admin.site.register(RoutingSettings)
