from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django_filters.views import FilterView
from django_tables2 import RequestConfig, SingleTableMixin

from .filtersets import DeviceFilterSet
from .forms import DeploymentSettingsForm
from .models import DeploymentEvent, DeploymentSettings, RegisteredPack
from .queries import devices_with_license_state
from .services import update_deployment_settings
from .tables import DeploymentEventTable, DeviceTable, RegisteredPackTable


class DeviceListView(LoginRequiredMixin, SingleTableMixin, FilterView):
    filterset_class = DeviceFilterSet
    table_class = DeviceTable
    template_name = "devices/device_list.html"
    # The table paginates; paginate_by on the view would paginate (and count) a second time.
    table_pagination = {"per_page": 50}

    def get_queryset(self):
        return devices_with_license_state().order_by("name", "pk")


@login_required
def deployment(request):
    conf = DeploymentSettings.load()
    if request.method == "POST":
        if not request.user.has_perm("devices.change_deploymentsettings"):
            raise PermissionDenied("Changing deployment settings needs the UMS administrator role.")
        form = DeploymentSettingsForm(request.POST, instance=DeploymentSettings.load())
        if form.is_valid():
            try:
                made = update_deployment_settings(
                    request.user.get_username(),
                    **{name: form.cleaned_data[name] for name in form.Meta.fields},
                )
            except ValidationError as exc:  # the service has the last word on the rules
                form.add_error(None, exc)
            else:
                messages.success(request, "; ".join(made) if made else "No change.")
                return redirect("devices:deployment")
    else:
        form = DeploymentSettingsForm(instance=conf)
    packs = RegisteredPackTable(RegisteredPack.objects.prefetch_related("condition_directories"))
    events = DeploymentEventTable(DeploymentEvent.objects.order_by("-at", "-id"))
    RequestConfig(request, paginate={"per_page": 25}).configure(events)
    return render(
        request,
        "devices/deployment.html",
        {
            "form": form,
            "conf": conf,
            "packs": packs,
            "events": events,
            "can_change": request.user.has_perm("devices.change_deploymentsettings"),
        },
    )
