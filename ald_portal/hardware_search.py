"""ILP *Search hardware*: the licenses (bound now or removed) of one unit ID or MAC, in any common
form. Project glue: a device whose MAC differs from its unit ID is known only to the UMS, so the
search asks ``devices`` for it; the licensing side matches unit IDs."""

from django.contrib.auth.mixins import LoginRequiredMixin
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from ald_portal.exports import ExportMixin, no_export_response
from devices.queries import macs_of_unit_ids, unit_ids_with_mac
from licensing.filtersets import HardwareSearchFilterSet
from licensing.models import LicenseSlot
from licensing.tables import HardwareSlotTable


class HardwareSearchView(LoginRequiredMixin, ExportMixin, SingleTableMixin, FilterView):
    export_basename = "hardware"
    filterset_class = HardwareSearchFilterSet
    table_class = HardwareSlotTable
    template_name = "licensing/search_hardware.html"
    table_pagination = {"per_page": 50}

    def _searched(self) -> bool:
        return bool(self.request.GET.get("hardware", "").strip())

    def get(self, request, *args, **kwargs):
        if request.GET.get("export") and not self._searched():
            return no_export_response("give a unit ID or MAC (hardware) to export the licenses bound to it.")
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return LicenseSlot.objects.select_related("pack", "ums").order_by("-bound_at", "-pk")

    def get_filterset_kwargs(self, filterset_class):
        kwargs = super().get_filterset_kwargs(filterset_class)
        kwargs["extra_unit_ids"] = lambda hex_id: unit_ids_with_mac(hex_id) if len(hex_id) == 12 else []
        return kwargs

    def get_table_kwargs(self):
        # One identifier finds few unit IDs: their MACs in one query, for the page and the export alike.
        unit_ids = set(self.object_list.values_list("unit_id", flat=True).order_by().distinct())
        return {"macs": macs_of_unit_ids(unit_ids) if unit_ids else {}}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["no_exports"] = not self._searched()
        return context

    def get_table(self, **kwargs):
        table = super().get_table(**kwargs)
        if not self.filterset.form.is_valid() or not self.filterset.form.cleaned_data.get("hardware"):
            table.empty_text = "Give a unit ID or MAC to see the licenses bound to it."
        return table
