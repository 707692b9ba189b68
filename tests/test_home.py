"""The home page across apps: each app contributes figures, shown by role."""

from django.urls import reverse


def test_home_shows_figures_by_role(login, cast):
    from django.core.cache import cache

    from ecrm.customers.models import Customer

    cache.clear()
    Customer.objects.create(display_name="A")
    Customer.objects.create(display_name="B")
    page = login("manager").get(reverse("core:home")).content.decode()
    assert "Possible duplicates to review" in page and "Revenue (30 days)" in page
    assert '<span class="figure-value">2</span><span class="figure-label">Customers</span>' in page
    agent_page = login("agent_li").get(reverse("core:home")).content.decode()
    assert "Possible duplicates to review" not in agent_page  # agents cannot merge
    nobody_page = login("nobody").get(reverse("core:home")).content.decode()
    assert "Customers</span>" not in nobody_page
