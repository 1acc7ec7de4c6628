from django import forms
from django.utils.text import capfirst

from ald_portal.importing import normalize_hex_id

from .models import DeploymentSettings, Device

# The same limits devices.services.update_deployment_settings enforces; the form checks them first
# so a bad value becomes a message next to its field instead of an error page.
MINUTES_MIN, MINUTES_MAX = 1, 10080


def _bounded(name):
    field = DeploymentSettings._meta.get_field(name)
    return forms.IntegerField(
        label=capfirst(field.verbose_name), min_value=MINUTES_MIN, max_value=MINUTES_MAX
    )


class DeploymentSettingsForm(forms.ModelForm):
    sweep_minutes = _bounded("sweep_minutes")
    exchange_days = _bounded("exchange_days")

    class Meta:
        model = DeploymentSettings
        fields = ["ald_enabled", "sweep_minutes", "exchange_enabled", "exchange_days"]


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
