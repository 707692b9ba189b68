"""Back-office views of products and orders."""

from django.contrib import admin

from .models import Order, OrderLine, OrderStatusChange, Product, Return


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    raw_id_fields = ["product"]


class StatusInline(admin.TabularInline):
    model = OrderStatusChange
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "status", "total", "currency", "placed_at"]
    list_filter = ["status"]
    search_fields = ["=external_id"]
    raw_id_fields = ["customer"]
    show_full_result_count = False
    inlines = [OrderLineInline, StatusInline]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "category_path", "price", "currency"]
    search_fields = ["=sku", "name"]


@admin.register(Return)
class ReturnAdmin(admin.ModelAdmin):
    list_display = ["order", "status", "quantity", "refund_amount", "created_at"]
    raw_id_fields = ["order", "order_line"]
