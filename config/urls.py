from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("customers/", include("ecrm.customers.urls")),
    path("commerce/", include("ecrm.commerce.urls")),
    path("ingest/", include("ecrm.ingest.urls")),
    path("analytics/", include("ecrm.analytics.urls")),
    path("inbox/", include("ecrm.conversations.urls")),
    path("service/", include("ecrm.service.urls")),
    path("kb/", include("ecrm.knowledge.urls")),
    path("portal/", include("ecrm.portal.urls")),
    path("routing/", include("ecrm.routing.urls")),
    path("webhooks/", include("ecrm.webhooks.urls")),
    path("workflows/", include("ecrm.workflows.urls")),
    # public, no console login: the help center and what the shop embeds (chat widget, web forms)
    path("help/", include("ecrm.knowledge.public_urls")),
    path("connect/", include("ecrm.conversations.public_urls")),
    path("", include("ecrm.core.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
