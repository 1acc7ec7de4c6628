from django import forms
from django.utils.text import capfirst

from ald_portal.importing import normalize_hex_id

from .models import DeploymentSettings, Device

# The same limits devices.services.update_deployment_settings enforces; the form checks them first
# so a bad value becomes a message next to its field instead of an error page.
MINUTES_MIN, MINUTES_MAX = 1, 10080
NOTIFY_MIN, NOTIFY_MAX = 0, 100_000


def _bounded(name, low=MINUTES_MIN, high=MINUTES_MAX):
    field = DeploymentSettings._meta.get_field(name)
    return forms.IntegerField(label=capfirst(field.verbose_name), min_value=low, max_value=high)


class DeploymentSettingsForm(forms.ModelForm):
    sweep_minutes = _bounded("sweep_minutes")
    exchange_days = _bounded("exchange_days")
    notify_free_below = _bounded("notify_free_below", NOTIFY_MIN, NOTIFY_MAX)

    class Meta:
        model = DeploymentSettings
        fields = ["ald_enabled", "sweep_minutes", "exchange_enabled", "exchange_days", "notify_free_below"]


class DeviceAdminForm(forms.ModelForm):
    """Registering a device by hand takes MAC and unit ID in any common form, as the import does."""

    # room for separators (00:E0:C5:...); the stored value is the bare hex digits
    unit_id = forms.CharField(label="Unit ID", max_length=60)
    mac = forms.CharField(label="MAC", max_length=40)

    class Meta:
        model = Device
        fields = "__all__"

    def _hex(self, name):
        value = self.cleaned_data.get(name, "")
        return normalize_hex_id(value) or value  # a value that is no hex at all fails the validator

    def clean_mac(self):
        return self._hex("mac")

    def clean_unit_id(self):
        return self._hex("unit_id")


class LicenseManuallyForm(forms.Form):
    """License manually...: the administrator picks a registered pack."""

    pack_id = forms.ChoiceField(label="Pack")

    def __init__(self, *args, packs=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pack_id"].choices = [
            (p.pack_id, f"{p.pack_id} · {p.product_name} · {p.free} free") for p in packs
        ]


class DistributionForm(forms.Form):
    """View/Edit Distribution Conditions of a registered pack."""

    distribution_method = forms.ChoiceField(
        label="Automatic distribution method", choices=[], widget=forms.RadioSelect
    )
    directories = forms.MultipleChoiceField(
        label="Directories (each with its subdirectories)",
        choices=[],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, directory_paths=(), **kwargs):
        from .models import DistributionMethod

        super().__init__(*args, **kwargs)
        self.fields["distribution_method"].choices = DistributionMethod.choices
        self.fields["directories"].choices = [(str(pk), path) for pk, path in directory_paths]
