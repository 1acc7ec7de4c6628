from django import forms

from .models import DeploymentSettings


class DeploymentSettingsForm(forms.ModelForm):
    class Meta:
        model = DeploymentSettings
        fields = ["ald_enabled", "sweep_minutes", "exchange_enabled", "exchange_days"]
        widgets = {
            "sweep_minutes": forms.NumberInput(attrs={"min": 1, "max": 10080}),
            "exchange_days": forms.NumberInput(attrs={"min": 1, "max": 10080}),
        }

    def clean(self):
        cleaned = super().clean()
        for name in ("sweep_minutes", "exchange_days"):
            value = cleaned.get(name)
            if value is not None and not 1 <= value <= 10080:
                self.add_error(name, f"Must be from 1 to 10080, not {value}.")
        return cleaned
