from django.urls import path

from . import views

app_name = "devices"
urlpatterns = [
    path("devices/", views.DeviceListView.as_view(), name="device_list"),
    path("devices/<int:pk>/", views.device_detail, name="device_detail"),
    path("devices/license-manually/", views.license_devices_manually, name="license_manually"),
    path("deployment/", views.deployment, name="deployment"),
    path("deployment/ums-id.crt", views.ums_certificate, name="ums_certificate"),
    path("notifications/", views.notifications, name="notifications"),
]
