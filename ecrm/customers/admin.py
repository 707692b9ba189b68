"""Back-office views of customer data (read-mostly: merges and edits go through the console's services)."""

from django.contrib import admin

from .models import (
    Consent,
    CustomAttributeDefinition,
    Customer,
    CustomerMerge,
    DuplicateCandidate,
    Identity,
    Note,
    Tag,
)


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0
    readonly_fields = ["kind", "value", "source", "created_at"]
    can_delete = False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["id", "display_name", "email", "phone", "country", "lifecycle_stage", "status", "last_seen_at"]
    list_filter = ["status", "lifecycle_stage"]
    search_fields = ["=id", "search_name", "=email", "=phone"]
    show_full_result_count = False  # no COUNT(*) over a million rows
    readonly_fields = ["status", "merged_into", "search_name", "created_at", "updated_at"]
    inlines = [IdentityInline]


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ["kind", "value", "customer", "source", "created_at"]
    search_fields = ["=value"]
    raw_id_fields = ["customer"]
    show_full_result_count = False


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "color"]
    search_fields = ["name"]


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["customer", "author", "created_at"]
    raw_id_fields = ["customer"]


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ["customer", "purpose", "channel", "granted", "source", "recorded_at"]
    raw_id_fields = ["customer"]


@admin.register(CustomAttributeDefinition)
class CustomAttributeDefinitionAdmin(admin.ModelAdmin):
    list_display = ["key", "label", "type"]


@admin.register(DuplicateCandidate)
class DuplicateCandidateAdmin(admin.ModelAdmin):
    list_display = ["customer_a", "customer_b", "score", "status", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["customer_a", "customer_b", "resolved_by"]


@admin.register(CustomerMerge)
class CustomerMergeAdmin(admin.ModelAdmin):
    """Merge records are evidence for unmerge: viewable, never editable here."""

    list_display = ["id", "survivor", "merged", "created_at", "created_by", "unmerged_at"]
    raw_id_fields = ["survivor", "merged", "candidate"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
