from django.urls import path

from . import views

app_name = "devices"
urlpatterns = [
    path("devices/", views.DeviceListView.as_view(), name="device_list"),
    path("deployment/", views.deployment, name="deployment"),
]
