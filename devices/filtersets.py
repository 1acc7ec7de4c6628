import re

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q

from ald_portal import clock
from ald_portal.filters import DayFilter
from ald_portal.importing import normalize_hex_id

from .directories import paths, subtree
from .models import (
    DeploymentEvent,
    DeploymentSettings,
    Device,
    DeviceLicense,
    Firmware,
    LicenseSource,
    LicenseStatus,
    WaitingReason,
)

# The states of one deployed license (DeviceLicense.expiry_state), as filter choices.
EXPIRY_STATE_CHOICES = [
    ("licensed", "Licensed"),
    ("expiring", "Expiring"),
    ("grace", "Grace period (IGEL OS 12)"),
    ("expired", "Expired"),
]


def service_choices():
    """Every service a registered pack or a deployed license names (WE, EMP, ADDON_...), one query."""
    from .models import RegisteredPack

    names = (
        RegisteredPack.objects.order_by()
        .values_list("service", flat=True)
        .union(DeviceLicense.objects.order_by().values_list("service", flat=True))
    )
    return [(name, name) for name in sorted(set(names))]


HEX_PART_RE = re.compile(r"[0-9A-Fa-f:.\- ]+")


class UnitIdField(forms.CharField):
    """A unit ID (or part of one) in any common form: plain, colons, dashes, dots, any case."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return value
        hexed = normalize_hex_id(value, spaces=True)
        if hexed is None:
            raise forms.ValidationError(
                "Unit ID %(value)r is not hexadecimal digits (plain, in pairs with : - or spaces, "
                "or in fours with dots).",
                params={"value": value},
            )
        return hexed


class UnitIdFilter(django_filters.CharFilter):
    field_class = UnitIdField


class LicenseState:
    LICENSED = "licensed"
    WAITING = "waiting"
    UNLICENSED = "unlicensed"
    CHOICES = [(LICENSED, "Licensed"), (WAITING, "Waiting for a license"), (UNLICENSED, "Unlicensed")]


class AnySelected(forms.Select):
    """A choice whose "Any" (``unknown``) shows as chosen when nothing is."""

    def format_value(self, value):
        return super().format_value(value) if value not in (None, "", []) else ["unknown"]


class DeviceFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search (name, unit ID, MAC, IP)")
    license_state = django_filters.ChoiceFilter(choices=LicenseState.CHOICES, label="License state")
    directory = django_filters.ChoiceFilter(
        empty_label="Any",
        choices=[],  # filled per request in __init__, with one query
        method="in_directory",
        label="Directory (with subdirectories)",
    )
    service = django_filters.ChoiceFilter(
        choices=[], method="by_license", label="License type (service)", empty_label="Any"
    )
    license = django_filters.ChoiceFilter(
        choices=EXPIRY_STATE_CHOICES, method="by_license", label="A license that is", empty_label="Any"
    )
    waiting_for = django_filters.ChoiceFilter(
        choices=[], method="by_wait", label="Waiting for a license of", empty_label="Any"
    )
    waiting_reason = django_filters.ChoiceFilter(
        choices=WaitingReason.choices, method="by_wait", label="Waiting because", empty_label="Any"
    )
    firmware = django_filters.ModelChoiceFilter(
        queryset=Firmware.objects.all(),
        label="Firmware",
        error_messages={"invalid_choice": "Firmware %(value)r is not one of the firmwares."},
    )
    site = django_filters.ChoiceFilter(choices=[], label="Site", empty_label="Any")
    # a choice, not a BooleanFilter: that one reads any other value ("yes", "bogus") as "Any" and
    # lists everything without a word
    moved_to_bin = django_filters.ChoiceFilter(
        label="In recycle bin",
        widget=AnySelected,
        choices=[("unknown", "Any"), ("true", "Yes"), ("false", "No")],
        empty_label=None,
        method="in_recycle_bin",
        error_messages={
            "invalid_choice": "In recycle bin %(value)r is not one of Any, Yes, No (true, false)."
        },
    )

    class Meta:
        model = Device
        fields = [
            "q",
            "license_state",
            "service",
            "license",
            "waiting_for",
            "waiting_reason",
            "directory",
            "firmware",
            "site",
            "moved_to_bin",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.directory_paths = paths()  # the device table shows them too (one query for both)
        choices = [("root", "(root directory)")] + [(str(pk), path) for pk, path in self.directory_paths]
        self.filters["directory"].extra["choices"] = choices
        self.filters["service"].extra["choices"] = self.filters["waiting_for"].extra["choices"] = (
            service_choices()
        )
        sites = Device.objects.exclude(site="").values_list("site", flat=True).distinct().order_by("site")
        self.filters["site"].extra["choices"] = [(s, s) for s in sites]

    def by_license(self, queryset, name, value):
        """Service and license state go together: a device with a current license of that service
        in that state (either alone: any service, any state)."""
        if name == "license" and self.form.cleaned_data.get("service"):
            return queryset  # applied with the service
        from .queries import expiry_state_q

        held = DeviceLicense.objects.filter(device=OuterRef("pk"), status=LicenseStatus.CURRENT)
        service = self.form.cleaned_data.get("service")
        state = self.form.cleaned_data.get("license")
        if service:
            held = held.filter(service=service)
        if state:
            held = held.filter(expiry_state_q(state, clock.today(), DeploymentSettings.load().exchange_days))
        return queryset.filter(Exists(held))

    def by_wait(self, queryset, name, value):
        """Waiting for a license of a service, for a reason, or both together: the devices the
        dashboard's demand and the Deployment page's waiting summary count."""
        if name == "waiting_reason" and self.form.cleaned_data.get("waiting_for"):
            return queryset  # applied with the service
        from .queries import license_waits

        waits = license_waits().filter(device=OuterRef("pk"))
        if service := self.form.cleaned_data.get("waiting_for"):
            waits = waits.filter(service=service)
        if reason := self.form.cleaned_data.get("waiting_reason"):
            waits = waits.filter(reason=reason)
        return queryset.filter(Exists(waits))

    def in_directory(self, queryset, name, value):
        if value == "root":
            return queryset.filter(directory__isnull=True)
        return queryset.filter(directory_id__in=subtree([int(value)]))

    def in_recycle_bin(self, queryset, name, value):
        if value == "unknown":
            return queryset
        return queryset.filter(moved_to_bin=value == "true")

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        # a unit ID or MAC, or a part of one, only when that is all it is: hex digits and the usual
        # separators (the hex letters of a name, "EE" of "NEWUSER", are no unit ID)
        hexed = re.sub(r"[:.\- ]", "", value).upper() if HEX_PART_RE.fullmatch(value) else ""
        q = Q(name__icontains=value) | Q(last_ip__icontains=value)
        if hexed:
            q |= Q(unit_id__icontains=hexed) | Q(mac__icontains=hexed)
        return queryset.filter(q)


class DeviceLicenseFilterSet(django_filters.FilterSet):
    """Device Licenses: every license deployed to a device."""

    unit_id = UnitIdFilter(method="by_unit_id", label="Unit ID (any form, or part of one)")
    service = django_filters.ChoiceFilter(choices=[], label="License type (service)", empty_label="Any")
    pack_id = django_filters.ChoiceFilter(choices=[], label="Pack", empty_label="Any")
    expiry_state = django_filters.ChoiceFilter(choices=EXPIRY_STATE_CHOICES, label="State", empty_label="Any")
    status = django_filters.ChoiceFilter(choices=LicenseStatus.choices, label="Status", empty_label="Any")
    source = django_filters.ChoiceFilter(choices=LicenseSource.choices, label="Source", empty_label="Any")

    class Meta:
        model = DeviceLicense
        fields = ["unit_id", "service", "pack_id", "expiry_state", "status", "source"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["service"].extra["choices"] = service_choices()
        packs = DeviceLicense.objects.values_list("pack_id", flat=True).distinct().order_by("pack_id")
        self.filters["pack_id"].extra["choices"] = [(p, p) for p in packs]

    def by_unit_id(self, queryset, name, value):
        return queryset.filter(unit_id__contains=value) if value else queryset


class DeploymentEventFilterSet(django_filters.FilterSet):
    """Executed actions."""

    action = django_filters.ChoiceFilter(choices=DeploymentEvent.Action.choices, empty_label="Any")
    outcome = django_filters.ChoiceFilter(choices=DeploymentEvent.Outcome.choices, empty_label="Any")
    actor = django_filters.CharFilter(lookup_expr="icontains", label="By (user or ALD)")
    device = django_filters.CharFilter(method="by_device", label="Device (name or unit ID)")
    pack_id = django_filters.CharFilter(lookup_expr="icontains", label="Pack ID")
    since = DayFilter(
        field_name="at",
        lookup_expr="date__gte",
        label="From (YYYY-MM-DD)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = DayFilter(
        field_name="at",
        lookup_expr="date__lte",
        label="To (YYYY-MM-DD)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = DeploymentEvent
        fields = ["action", "outcome", "actor", "device", "pack_id", "since", "until"]

    def by_device(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        q = Q(device__name__icontains=value)
        hexed = normalize_hex_id(value, spaces=True)
        if hexed:
            q |= Q(unit_id__contains=hexed)
        return queryset.filter(q)
