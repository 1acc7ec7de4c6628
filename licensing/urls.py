from django.urls import path

from . import ums_id_views, views

app_name = "licensing"
urlpatterns = [
    # The dashboard ("") and Search hardware ("search-hardware/") show UMS data too, so they live in
    # the project glue and ald_portal/urls.py adds them to this namespace: ``licensing`` never
    # imports ``devices``.
    path("packs/", views.PackListView.as_view(), name="pack_list"),
    path("packs/<str:pack_id>/", views.pack_detail, name="pack_detail"),
    path("packs/<str:pack_id>/<slug:action>/", views.pack_action, name="pack_action"),
    path("ums-ids/", ums_id_views.ums_id_list, name="ums_id_list"),
    path("ums-ids/register/", ums_id_views.ums_id_register, name="ums_id_register"),
    path("ums-ids/<int:pk>/certificate.crt", ums_id_views.ums_id_certificate, name="ums_id_certificate"),
    path("ums-ids/<int:pk>/<slug:action>/", ums_id_views.ums_id_action, name="ums_id_action"),
    path(
        "subscription-keys/<int:pk>/ald-token/<slug:action>/",
        ums_id_views.ald_token_action,
        name="ald_token_action",
    ),
    path("orders/", views.OrderListView.as_view(), name="order_list"),
    path("orders/<str:number>/", views.order_detail, name="order_detail"),
    path("orders/<str:number>/accept-eula/", views.order_accept_eula, name="order_accept_eula"),
    path("subscription-keys/", views.SubscriptionKeyListView.as_view(), name="subscription_key_list"),
    path("activity/", views.ActivityListView.as_view(), name="activity"),
]
