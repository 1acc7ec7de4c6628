from django.urls import path

from . import views

app_name = "ils"
urlpatterns = [
    path("packs", views.packs, name="packs"),
    path("merged-packs", views.merged_packs, name="merged_packs"),
    path("slots", views.slots, name="slots"),
    path("licenses/request", views.request_licenses, name="request_licenses"),
    path("licenses/release", views.release_license, name="release_license"),
    path("reconcile", views.reconcile, name="reconcile"),
    path("license-files", views.license_file, name="license_file"),
]
