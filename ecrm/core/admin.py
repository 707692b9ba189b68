from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import ApiKey, AuditLog, FailedJob, Team, User


@admin.register(User)
class EcrmUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("eCRM", {"fields": ("role", "teams", "language")}))
    list_display = ("username", "email", "role", "is_active", "last_login")
    list_filter = ("role", "is_active", "teams")


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    search_fields = ("name",)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "scope", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "last_used_at")


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("at", "actor_label", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(FailedJob)
class FailedJobAdmin(admin.ModelAdmin):
    list_display = ("task_name", "failed_at", "resolved_at")
