"""Products, orders, order lines, order status history and returns. Money is Decimal with a currency."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrm.core.models import TimeStampedModel
from ecrm.customers.models import Customer

MONEY = {"max_digits": 14, "decimal_places": 2}

# The fields a shop sends for a product or an order (besides its key and customer): the single-object
# services and the bulk importer update exactly these.
PRODUCT_DATA_FIELDS = ("name", "category_path", "price", "currency")
ORDER_DATA_FIELDS = (
    "status",
    "channel",
    "placed_at",
    "subtotal",
    "shipping",
    "discount",
    "total",
    "currency",
    "shipping_city",
    "shipping_country",
    "tracking_number",
)


class Product(TimeStampedModel):
    """A sellable item, identified by SKU."""

    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    category_path = models.CharField(
        _("category"), max_length=255, blank=True, help_text="e.g. Home/Kitchen/Knives"
    )
    price = models.DecimalField(_("price"), **MONEY, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")

    class Meta:
        ordering = ["sku"]
        indexes = [models.Index(fields=["category_path"], name="product_category_idx")]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    @property
    def top_category(self) -> str:
        return self.category_path.split("/")[0] if self.category_path else ""


class OrderStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PAID = "paid", _("Paid")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    REFUNDED = "refunded", _("Refunded")


class Order(TimeStampedModel):
    """A customer's order, identified by the shop's external id (its order number)."""

    external_id = models.CharField(_("order number"), max_length=64, unique=True)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    status = models.CharField(
        _("status"), max_length=16, choices=OrderStatus.choices, default=OrderStatus.PAID
    )
    channel = models.CharField(
        _("channel"), max_length=32, blank=True, help_text="web, app, marketplace, store…"
    )
    placed_at = models.DateTimeField(_("placed"))
    subtotal = models.DecimalField(**MONEY, null=True, blank=True)
    shipping = models.DecimalField(**MONEY, null=True, blank=True)
    discount = models.DecimalField(**MONEY, null=True, blank=True)
    total = models.DecimalField(_("total"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    shipping_city = models.CharField(_("shipping city"), max_length=100, blank=True)
    shipping_country = models.CharField(max_length=2, blank=True)
    tracking_number = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["customer", "-placed_at"], name="order_customer_placed_idx"),
            models.Index(fields=["placed_at"], name="order_placed_idx"),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def counts_as_revenue(self) -> bool:
        return self.status not in (OrderStatus.CANCELLED, OrderStatus.REFUNDED, OrderStatus.PENDING)


class OrderLine(models.Model):
    """One product line of an order."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveIntegerField(default=1)
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True)
    quantity = models.DecimalField(max_digits=12, decimal_places=3, default=1)
    unit_price = models.DecimalField(**MONEY)
    line_total = models.DecimalField(**MONEY)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "line_no"], name="uniq_order_line_no")]
        ordering = ["order", "line_no"]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.line_no} {self.sku} × {self.quantity}"


class OrderStatusChange(models.Model):
    """One step in an order's status history."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="status_history")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    changed_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["changed_at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status or '-'} -> {self.to_status}"


class ReturnStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    APPROVED = "approved", _("Approved")
    RECEIVED = "received", _("Received")
    REFUNDED = "refunded", _("Refunded")
    REJECTED = "rejected", _("Rejected")


class Return(TimeStampedModel):
    """A return of (part of) an order line."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="returns")
    order_line = models.ForeignKey(
        OrderLine, null=True, blank=True, on_delete=models.SET_NULL, related_name="returns"
    )
    external_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    quantity = models.DecimalField(max_digits=12, decimal_places=3, default=1)
    reason = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=ReturnStatus.choices, default=ReturnStatus.REQUESTED)
    refund_amount = models.DecimalField(**MONEY, null=True, blank=True)
