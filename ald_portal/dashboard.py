"""The License Portal dashboard (ILP *Home*), with what the UMS adds to it: the devices waiting for a
license. Project glue: it reads both sides (``licensing`` never imports ``devices``)."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from ald_portal import clock
from ald_portal.exports import ExportMixin
from devices.queries import demand_per_product_type, devices_waiting
from licensing.filtersets import PackFilterSet
from licensing.models import Company, ProductPack
from licensing.reports import (
    licenses_expiring_per_month,
    product_type_consumption,
    quick_list_counts,
    with_recent_bindings,
)
from licensing.tables import DashboardPackTable


class DashboardView(LoginRequiredMixin, ExportMixin, SingleTableMixin, FilterView):
    """Company and Global Account ID; the quick lists (RENEW NOW!, expired, expiring within 30 and 90
    days); consumption per product type; licenses expiring per month; the demand of waiting devices;
    the non-archived packs, each with when it is used up at the last 30 days' rate."""

    export_basename = "dashboard-packs"
    filterset_class = PackFilterSet
    table_class = DashboardPackTable
    template_name = "licensing/dashboard.html"
    table_pagination = {"per_page": 50}

    def get_queryset(self):
        packs = ProductPack.objects.select_related("assigned_ums", "subscription_key").order_by(
            "pack_id", "pk"
        )
        return with_recent_bindings(packs)

    def get_context_data(self, **kwargs):
        today = clock.today()
        demand = demand_per_product_type(today)
        return super().get_context_data(
            companies=Company.objects.all(),
            consumption=product_type_consumption(today),
            quick=quick_list_counts(today),
            expiring=licenses_expiring_per_month(today),
            demand=demand,
            demand_waiting=devices_waiting(today),
            demand_more=sum(d.more_licenses for d in demand),
            **kwargs,
        )
