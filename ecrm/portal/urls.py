"""Customer portal pages (mounted at /portal/)."""

from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("login/<str:token>/", views.redeem, name="redeem"),
    path("logout/", views.logout, name="logout"),
    path("orders/", views.orders, name="orders"),
    path("orders/<int:order_id>/", views.order_detail, name="order"),
    path("orders/<int:order_id>/lines/<int:line_id>/return/", views.request_return, name="request_return"),
    path("tickets/", views.tickets, name="tickets"),
    path("tickets/<int:ticket_id>/", views.ticket_detail, name="ticket"),
    path("help/", views.help_search, name="help"),
]
