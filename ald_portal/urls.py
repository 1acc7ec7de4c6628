from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

import licensing.urls
from ald_portal.dashboard import DashboardView
from ald_portal.hardware_search import HardwareSearchView

# The License Portal's pages; the two that show UMS data too are project glue (ald_portal), so that
# ``licensing`` never imports ``devices``. All keep the ``licensing:`` names.
ilp_patterns = [
    path("", DashboardView.as_view(), name="dashboard"),
    path("search-hardware/", HardwareSearchView.as_view(), name="search_hardware"),
    *licensing.urls.urlpatterns,
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="licensing:dashboard", permanent=False)),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("ilp/", include((ilp_patterns, licensing.urls.app_name))),
    path("ums/", include("devices.urls")),
    path("umsapi/", include("devices.imi.urls")),
    path("ils/v1/", include("licensing.api.urls")),
]
