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


PROXY_FIELDS = ["proxy_enabled", "proxy_host", "proxy_port", "proxy_user", "proxy_password"]


class DeploymentSettingsForm(forms.ModelForm):
    sweep_minutes = _bounded("sweep_minutes")
    exchange_days = _bounded("exchange_days")
    notify_free_below = _bounded("notify_free_below", NOTIFY_MIN, NOTIFY_MAX)
    # Edit Proxy Configuration: the proxy towards the licensing service (used when ILS_URL is set)
    proxy_port = forms.IntegerField(label="Proxy port", min_value=1, max_value=65535, required=False)
    proxy_password = forms.CharField(
        label="Proxy password",
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Left empty: the saved password is kept.",
    )

    class Meta:
        model = DeploymentSettings
        fields = [
            "ald_enabled",
            "sweep_minutes",
            "exchange_enabled",
            "exchange_days",
            "notify_free_below",
            *PROXY_FIELDS,
        ]

    def clean_proxy_host(self):
        host = self.cleaned_data.get("proxy_host", "").strip()
        if host and any(c in host for c in "/@: \t"):
            raise forms.ValidationError(
                f"Proxy host {host!r} must be a host name or address only, without scheme, port or user."
            )
        return host

    def clean_proxy_password(self):
        return self.cleaned_data.get("proxy_password") or (
            self.instance.proxy_password if self.instance else ""
        )

    def clean(self):
        data = super().clean()
        if data.get("proxy_enabled"):
            if not data.get("proxy_host") and "proxy_host" not in self.errors:
                self.add_error("proxy_host", "Proxy host is needed when a proxy is used.")
            if not data.get("proxy_port") and "proxy_port" not in self.errors:
                self.add_error("proxy_port", "Proxy port is needed when a proxy is used.")
        return data


class AldTokenForm(forms.Form):
    token = forms.CharField(label="ALD token", max_length=100, widget=forms.PasswordInput(render_value=False))


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
            (p.pack_id, getattr(p, "choice_label", None) or f"{p.pack_id} · {p.product_name} · {p.free} free")
            for p in packs
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
