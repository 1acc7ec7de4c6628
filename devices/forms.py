from django import forms
from django.utils.text import capfirst

from .models import DeploymentSettings

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
