from django.urls import path

from . import views

app_name = "devices"
urlpatterns = [
    path("", views.ums_home, name="home"),
    path("devices/", views.DeviceListView.as_view(), name="device_list"),
    path("devices/<int:pk>/", views.device_detail, name="device_detail"),
    path(
        "devices/<int:pk>/licenses/<int:license_pk>/file/",
        views.download_license_file,
        name="license_file",
    ),
    path("devices/license-manually/", views.license_devices_manually, name="license_manually"),
    path("deployment/", views.deployment, name="deployment"),
    path("device-licenses/", views.DeviceLicenseListView.as_view(), name="device_licenses"),
    path("actions/", views.ExecutedActionListView.as_view(), name="executed_actions"),
    path("directories/", views.directory_tree, name="directory_tree"),
    path("deployment/preview/", views.ald_preview, name="ald_preview"),
    path("deployment/packs/<str:pack_id>/distribution/", views.pack_distribution, name="pack_distribution"),
    path("deployment/ums-id.crt", views.ums_certificate, name="ums_certificate"),
    path("notifications/", views.notifications, name="notifications"),
]
