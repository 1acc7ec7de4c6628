from django.urls import path

from . import views

app_name = "licensing"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("packs/", views.PackListView.as_view(), name="pack_list"),
    path("packs/<str:pack_id>/", views.pack_detail, name="pack_detail"),
    path("packs/<str:pack_id>/<slug:action>/", views.pack_action, name="pack_action"),
]
