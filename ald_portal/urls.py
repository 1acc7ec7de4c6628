from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

import licensing.urls
from ald_portal.dashboard import DashboardView
from ald_portal.hardware_search import HardwareSearchView


def favicon(request):
    """/favicon.ico, which browsers ask for by themselves: the portal's icon. Resolved per request:
    with DEBUG off the static file's name comes from collectstatic's manifest."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


# The License Portal's pages; the two that show UMS data too are project glue (ald_portal), so that
# ``licensing`` never imports ``devices``. All keep the ``licensing:`` names.
ilp_patterns = [
    path("", DashboardView.as_view(), name="dashboard"),
    path("search-hardware/", HardwareSearchView.as_view(), name="search_hardware"),
    *licensing.urls.urlpatterns,
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="licensing:dashboard", permanent=False)),
    path("favicon.ico", favicon),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("ilp/", include((ilp_patterns, licensing.urls.app_name))),
    path("ums/", include("devices.urls")),
    path("umsapi/", include("devices.imi.urls")),
    path("ils/v1/", include("licensing.api.urls")),
]
