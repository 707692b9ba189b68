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
    path("", include("ecrm.core.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
