from django.conf import settings as django_settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_safe
from django_filters.views import FilterView
from django_tables2 import RequestConfig, SingleTableMixin

from ald_portal import clock
from ald_portal.exports import FORMATS, ExportMixin, filter_errors_response

from .device_licenses import (
    clear_exclusion,
    delete_device,
    license_file,
    license_manually,
    packs_to_license_manually,
    remove_license,
)
from .directories import paths, tree_with_counts
from .engine import run_cycle
from .exports import unit_id_list_response
from .filtersets import DeploymentEventFilterSet, DeviceFilterSet, DeviceLicenseFilterSet
from .forms import AldTokenForm, DeploymentSettingsForm, DistributionForm, LicenseManuallyForm
from .ils import IlsCredentialRefused, IlsUnavailable, LicenseServiceError
from .models import (
    DeploymentEvent,
    DeploymentSettings,
    Device,
    Notification,
    ReconciliationReport,
    RegisteredPack,
    UmsAldToken,
    WaitingReason,
)
from .notifications import EXPIRY_WINDOWS
from .queries import deployments_per_day, devices_with_license_state, licenses_with_state, waiting_summary
from .reconciliation import reconcile
from .services import (
    check_connection,
    refresh_registered_packs,
    register_ald_token,
    remove_ald_token,
    set_distribution,
    set_pack_active,
    update_deployment_settings,
)
from .tables import (
    DeploymentEventTable,
    DeviceLicenseTable,
    DeviceTable,
    ExecutedActionTable,
    RegisteredPackTable,
)
from .tasks import enqueue_sweep


class DeviceListView(LoginRequiredMixin, ExportMixin, SingleTableMixin, FilterView):
    export_basename = "devices"
    filterset_class = DeviceFilterSet
    table_class = DeviceTable
    template_name = "devices/device_list.html"
    # The table paginates; paginate_by on the view would paginate (and count) a second time.
    table_pagination = {"per_page": 50}

    def get_queryset(self):
        return devices_with_license_state().order_by("name", "pk")

    def get_table_kwargs(self):
        return {**super().get_table_kwargs(), "directory_paths": self.filterset.directory_paths}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_license"] = self.request.user.has_perm(CHANGE_DEVICE)
        if context["can_license"]:
            context["license_form"] = LicenseManuallyForm(packs=_registered_packs())
        return context


@login_required
def deployment(request):
    conf = DeploymentSettings.load()
    if request.method == "POST":
        if not request.user.has_perm("devices.change_deploymentsettings"):
            raise PermissionDenied("Changing deployment settings needs the UMS administrator role.")
        action = request.POST.get("action", "save")
        if action != "save":
            _deployment_action(request, action)
            return redirect("devices:deployment")
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
    show_defaults(form)
    # the Activate/Deactivate cell reads ``can_change`` from this page's context
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
            "ils_url": django_settings.ILS_URL,
            "ald_tokens": UmsAldToken.objects.order_by("registered_at", "pk"),
            "token_form": AldTokenForm(),
            "reconciliation": ReconciliationReport.objects.order_by("-at", "-id").first(),
            "deployments_per_day": deployments_per_day(),
            "waiting": waiting_summary(),
        },
    )


def show_defaults(form):
    """Each setting says its default beside it, as the UMS dialog documents them."""
    for name, field in form.fields.items():
        try:
            default = DeploymentSettings._meta.get_field(name).get_default()
        except FieldDoesNotExist:
            continue
        if isinstance(default, bool):
            default = "on" if default else "off"
        elif default in (None, ""):
            default = "empty"
        field.help_text = f"Default: {default}"


def _deployment_action(request, action):
    """The buttons of Licenses > Deployment: refresh packs, run ALD now, reconcile."""
    actor = request.user.get_username()
    try:
        if action == "refresh":
            result = refresh_registered_packs(actor=actor)
            messages.success(
                request,
                f"Packs refreshed from the licensing service: {len(result['registered'])} newly registered, "
                f"{len(result['refreshed'])} refreshed.",
            )
        elif action == "run_ald":
            enqueue_sweep()
            messages.success(request, "An ALD sweep is queued; the executed actions show what it does.")
        elif action == "reconcile":
            messages.success(request, reconcile(actor=actor).summary())
        elif action in ("activate", "deactivate"):
            pack_id = request.POST.get("pack_id", "")
            done = set_pack_active(pack_id, action == "activate", actor=actor)
            messages.success(
                request, f"Pack {pack_id} {action}d." if done else f"Pack {pack_id} was already {action}d."
            )
        elif action == "test_connection":
            messages.success(request, check_connection())
        elif action == "register_token":
            row = register_ald_token(request.POST.get("token", ""), actor=actor, check=True)
            messages.success(
                request, f"ALD token {row.hint}… registered; refresh the packs to see its packs."
            )
        elif action == "remove_token":
            row = remove_ald_token(_int(request.POST.get("token_id")), actor=actor)
            messages.success(request, f"ALD token {row.hint}… removed.")
        else:
            messages.error(request, f"Unknown action {action!r}.")
    except IlsCredentialRefused as exc:
        messages.error(request, f"The licensing service refused this UMS: {exc}")
    except IlsUnavailable as exc:
        messages.error(request, f"The licensing service cannot be reached: {exc}")
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)


# --- devices and their licenses, by hand ------------------------------------------------------------

CHANGE_DEVICE = "devices.change_device"


def _registered_packs():
    return packs_to_license_manually()


def _run_action(request, action, *args, **kwargs):
    """Run a service for a page action: its message on success, its error (naming the field and
    value) on refusal; never a 500 for a rule."""
    try:
        result = action(*args, actor=request.user.get_username(), **kwargs)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return None
    return result


@login_required
def device_detail(request, pk):
    device = get_object_or_404(Device.objects.select_related("directory", "firmware"), pk=pk)
    if request.method == "POST":
        if not request.user.has_perm(CHANGE_DEVICE):
            raise PermissionDenied("Licensing devices by hand needs the UMS administrator role.")
        action = request.POST.get("action")
        if action == "license_manually":
            form = LicenseManuallyForm(request.POST, packs=_registered_packs())
            if form.is_valid():
                result = _run_action(request, license_manually, [device.pk], form.cleaned_data["pack_id"])
                if result is not None:
                    messages.success(request, result.summary())
            else:
                messages.error(request, f"Pack: {form.errors['pack_id'][0]}")
        elif action == "remove_license":
            raw = request.POST.get("license_id")
            if _int(raw) is None:
                lic = None
                messages.error(request, f"license_id {raw!r} is not a license of this device.")
            else:
                lic = _run_action(request, remove_license, _int(raw), device_id=device.pk)
            if lic is not None:
                messages.success(
                    request,
                    f"{lic.service} license from {lic.pack_id} removed; "
                    "the device is excluded from ALD until you clear that.",
                )
        elif action == "clear_exclusion":
            _run_action(request, clear_exclusion, device.pk)
            messages.success(request, "ALD may license this device again; it is queued now.")
        elif action == "delete_device":
            freed = _run_action(
                request, delete_device, device.pk, delete_licenses=bool(request.POST.get("delete_licenses"))
            )
            if freed is not None:
                messages.success(request, f"Device {device.name} deleted ({freed} license slot(s) freed).")
                return redirect("devices:device_list")
        else:
            messages.error(request, f"Unknown action {action!r}.")
        return redirect("devices:device_detail", pk=device.pk)
    today = clock.today()
    conf = DeploymentSettings.load()
    licenses = list(device.licenses.order_by("service", "-issued_at", "-pk"))
    for lic in licenses:
        lic.state = lic.expiry_state(today, device.firmware.os_major, conf.exchange_days)
    return render(
        request,
        "devices/device_detail.html",
        {
            "device": device,
            "directory_path": dict(paths()).get(device.directory_id) if device.directory_id else None,
            "current": [lic for lic in licenses if lic.status == "CURRENT"],
            "history": licenses,
            "waits": list(device.waits.order_by("service")),
            "events": list(device.events.order_by("-at", "-id")[:50]),
            "form": LicenseManuallyForm(packs=_registered_packs()),
            "can_change": request.user.has_perm(CHANGE_DEVICE),
            "today": today,
        },
    )


@login_required
@require_safe
def ums_home(request):
    """/ums/: the UMS side opens on its devices."""
    return redirect("devices:device_list")


@login_required
@require_safe
def download_license_file(request, pk, license_pk):
    """The signed license file of one of the device's licenses."""
    if not Device.objects.filter(pk=pk, licenses__pk=license_pk).exists():
        raise Http404("No such license on this device.")
    try:
        name, data = license_file(license_pk)
    except ValidationError as exc:
        raise Http404(exc.messages[0]) from None
    except (IlsUnavailable, LicenseServiceError) as exc:
        # the licensing service issues the file: say why it could not, on the device page
        messages.error(request, f"The licensing service did not issue the license file: {exc}")
        return redirect("devices:device_detail", pk=pk)
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def license_devices_manually(request):
    """License manually... for the devices ticked on the device list, or every device matching the
    list's filter (a directory with its subdirectories, a firmware, a license state...)."""
    if request.method != "POST":
        return redirect("devices:device_list")
    if not request.user.has_perm(CHANGE_DEVICE):
        raise PermissionDenied("Licensing devices by hand needs the UMS administrator role.")
    form = LicenseManuallyForm(request.POST, packs=_registered_packs())
    if not form.is_valid():
        messages.error(request, f"Pack: {form.errors['pack_id'][0]}")
        return redirect("devices:device_list")
    if request.POST.get("scope") == "filter":
        filterset = DeviceFilterSet(request.POST, queryset=devices_with_license_state())
        ids = list(filterset.qs.values_list("pk", flat=True)) if filterset.is_valid() else []
    else:
        ids = [i for i in (_int(v) for v in request.POST.getlist("device")) if i is not None]
    result = _run_action(request, license_manually, ids, form.cleaned_data["pack_id"])
    if result is not None:
        messages.success(request, result.summary())
    return redirect("devices:device_list")


def _int(value):
    """A posted id as an int, or None when it is none (not digits, or beyond what a database id holds)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


@login_required
@require_safe
def notifications(request):
    """Notifications the UMS raised, newest first: everyone who may log in reads them."""
    state, kind = request.GET.get("state", ""), request.GET.get("kind", "")
    qs = Notification.objects.defer("snapshot").order_by("-created_at", "-pk")
    if state == "open":
        qs = qs.filter(resolved_at__isnull=True)
    elif state == "cleared":
        qs = qs.filter(resolved_at__isnull=False)
    if kind in Notification.Kind.values:
        qs = qs.filter(kind=kind)
    return render(
        request,
        "devices/notifications.html",
        {
            "page": Paginator(qs, 50).get_page(request.GET.get("page")),
            "state": state,
            "kind": kind,
            "kinds": Notification.Kind.choices,
            "conf": DeploymentSettings.load(),
            "windows": EXPIRY_WINDOWS,
        },
    )


# --- Device Licenses, Executed actions, the directory tree ------------------------------------------


class PortalListView(LoginRequiredMixin, ExportMixin, SingleTableMixin, FilterView):
    """A UMS list page: filter, sort (ties broken on the primary key), 50 a page, exports."""

    template_name = "devices/list_page.html"
    table_pagination = {"per_page": 50}
    heading = noun = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(heading=self.heading, noun=self.noun)
        return context


class DeviceLicenseListView(PortalListView):
    """Licenses > Device Licenses: every license deployed to a device; ``?export=unit_ids`` gives the
    unit ID list of the filtered rows, one a line."""

    export_basename = "device-licenses"
    filterset_class = DeviceLicenseFilterSet
    table_class = DeviceLicenseTable
    template_name = "devices/device_licenses.html"
    heading, noun = "Device Licenses", "license(s)"

    def get_queryset(self):
        return licenses_with_state().order_by("unit_id", "service", "-issued_at", "pk")

    export_formats = (*FORMATS, "unit_ids")

    def get(self, request, *args, **kwargs):
        if request.GET.get("export") == "unit_ids":
            filterset = self.get_filterset(self.get_filterset_class())
            if not filterset.is_valid():
                return filter_errors_response(filterset)
            return unit_id_list_response(filterset.qs, self.export_basename)
        return super().get(request, *args, **kwargs)


class ExecutedActionListView(PortalListView):
    export_basename = "executed-actions"
    filterset_class = DeploymentEventFilterSet
    table_class = ExecutedActionTable
    heading, noun = "Executed actions", "action(s)"
    template_name = "devices/executed_actions.html"

    def get_queryset(self):
        return DeploymentEvent.objects.select_related("device").order_by("-at", "-pk")


@login_required
@require_safe
def directory_tree(request):
    roots, unfiled = tree_with_counts(clock.today())
    return render(request, "devices/directory_tree.html", {"roots": roots, "unfiled": unfiled})


# --- distribution conditions and the ALD preview ----------------------------------------------------

CHANGE_PACK = "devices.change_registeredpack"


@login_required
def pack_distribution(request, pack_id):
    """View/Edit Distribution Conditions of a registered pack."""
    pack = get_object_or_404(RegisteredPack, pack_id=pack_id)
    directory_paths = paths()
    if request.method == "POST":
        if not request.user.has_perm(CHANGE_PACK):
            raise PermissionDenied("Changing distribution conditions needs the UMS administrator role.")
        form = DistributionForm(request.POST, directory_paths=directory_paths)
        if form.is_valid():
            try:
                made = set_distribution(
                    pack.pack_id,
                    form.cleaned_data["distribution_method"],
                    form.cleaned_data["directories"],
                    actor=request.user.get_username(),
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, made or "No change.")
                return redirect("devices:deployment")
    else:
        form = DistributionForm(
            initial={
                "distribution_method": pack.distribution_method,
                "directories": [str(pk) for pk in pack.condition_directories.values_list("pk", flat=True)],
            },
            directory_paths=directory_paths,
        )
    return render(
        request,
        "devices/pack_distribution.html",
        {"pack": pack, "form": form, "can_change": request.user.has_perm(CHANGE_PACK)},
    )


@login_required
@require_safe
def ald_preview(request):
    """What the next ALD run would do now, worked out without asking the licensing service or
    writing anything (``manage.py ald_run --dry-run`` shows the same)."""
    cycle = run_cycle(dry_run=True)
    report = cycle.as_dict()
    wanted = sorted(cycle.licensed_devices)[:PREVIEW_DEVICES]
    reasons = dict(WaitingReason.choices)
    return render(
        request,
        "devices/ald_preview.html",
        {
            "report": report,
            "pack_rows": [
                (pack_id, report["licensed_by_pack"].get(pack_id, 0), counts)
                for pack_id, counts in sorted(report["packs"].items())
            ],
            "waiting_rows": [(reasons.get(r, r), n) for r, n in report["waiting_reasons"].items()],
            "licenses_waiting": sum(report["waiting_reasons"].values()),
            "devices": Device.objects.filter(pk__in=wanted)
            .select_related("directory")
            .order_by("name", "pk"),
            "shown": len(wanted),
        },
    )


PREVIEW_DEVICES = 100


@login_required
@require_safe
def ums_certificate(request):
    """Export this UMS's UMS ID certificate (.crt) for registering it in the License Portal."""
    from django.http import HttpResponse

    from .services import ums_identity

    conf = ums_identity()
    response = HttpResponse(conf.ums_id_certificate_pem, content_type="application/x-x509-ca-cert")
    response["Content-Disposition"] = 'attachment; filename="ums-id.crt"'
    return response
