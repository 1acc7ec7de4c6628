import django_filters
from django import forms
from django.db.models import Q

from .directories import paths, subtree
from .models import Device, Firmware


class LicenseState:
    LICENSED = "licensed"
    WAITING = "waiting"
    UNLICENSED = "unlicensed"
    CHOICES = [(LICENSED, "Licensed"), (WAITING, "Waiting for a license"), (UNLICENSED, "Unlicensed")]


class AnyYesNo(forms.NullBooleanSelect):
    """A yes/no filter whose empty choice reads "Any", not "Unknown"."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", "Any"), ("true", "Yes"), ("false", "No")]


class DeviceFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search (name, unit ID, MAC, IP)")
    license_state = django_filters.ChoiceFilter(choices=LicenseState.CHOICES, label="License state")
    directory = django_filters.ChoiceFilter(
        empty_label="Any",
        choices=[],  # filled per request in __init__, with one query
        method="in_directory",
        label="Directory (with subdirectories)",
    )
    firmware = django_filters.ModelChoiceFilter(queryset=Firmware.objects.all(), label="Firmware")
    moved_to_bin = django_filters.BooleanFilter(label="In recycle bin", widget=AnyYesNo)

    class Meta:
        model = Device
        fields = ["q", "license_state", "directory", "firmware", "moved_to_bin"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("root", "(root directory)")] + [(str(pk), path) for pk, path in paths()]
        self.filters["directory"].extra["choices"] = choices

    def in_directory(self, queryset, name, value):
        if value == "root":
            return queryset.filter(directory__isnull=True)
        return queryset.filter(directory_id__in=subtree([int(value)]))

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        hexed = "".join(ch for ch in value.upper() if ch in "0123456789ABCDEF")
        q = Q(name__icontains=value) | Q(last_ip__icontains=value)
        if hexed:
            q |= Q(unit_id__icontains=hexed) | Q(mac__icontains=hexed)
        return queryset.filter(q)
