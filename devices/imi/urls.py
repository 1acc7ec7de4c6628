"""IMI v3 under /umsapi/: every path with or without a trailing slash, as IMI clients use both."""

from django.urls import re_path

from . import views

app_name = "imi"
ID = r"(?P<{}>[^/]+)"
urlpatterns = [
    re_path(r"^v3/serverstatus/?$", views.server_status, name="serverstatus"),
    re_path(r"^v3/login/?$", views.login, name="login"),
    re_path(r"^v3/logout/?$", views.logout, name="logout"),
    re_path(r"^v3/thinclients/?$", views.thinclients, name="thinclients"),
    re_path(rf"^v3/thinclients/{ID.format('tc_id')}/deletetcoffline/?$", views.thinclient_offline_delete),
    re_path(rf"^v3/thinclients/{ID.format('tc_id')}/?$", views.thinclient, name="thinclient"),
    re_path(r"^v3/directories/tcdirectories/?$", views.tcdirectories, name="tcdirectories"),
    re_path(
        rf"^v3/directories/tcdirectories/{ID.format('dir_id')}/?$", views.tcdirectory, name="tcdirectory"
    ),
    re_path(r"^v3/firmwares/?$", views.firmwares, name="firmwares"),
    re_path(rf"^v3/firmwares/{ID.format('fw_id')}/?$", views.firmware, name="firmware"),
    re_path(r"^(?P<rest>.*)$", views.no_handler),
]
