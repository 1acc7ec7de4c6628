from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="licensing:dashboard", permanent=False)),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("ilp/", include("licensing.urls")),
    path("ums/", include("devices.urls")),
    path("umsapi/", include("devices.imi.urls")),
    path("ils/v1/", include("licensing.api.urls")),
]
