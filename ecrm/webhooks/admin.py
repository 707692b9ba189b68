from django.contrib import admin

from .models import AllowedDestination, Delivery, Endpoint


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "is_active", "consecutive_failures", "disabled_at")
    exclude = ("secret",)  # revealed and rotated in the console, where it is audit logged
    readonly_fields = ("consecutive_failures", "disabled_at", "disabled_reason", "created_by")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "endpoint", "event_name", "status", "attempts", "last_status", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in Delivery._meta.fields]


@admin.register(AllowedDestination)
class AllowedDestinationAdmin(admin.ModelAdmin):
    list_display = ("value", "note", "created_by", "created_at")
