"""Forms of the pack page. They only read what was posted; every rule is in licensing.services, whose
refusals the views put next to the field they name. Every message names its field itself (the page
shows messages without a label in front), as the services' messages do."""

import re

from django import forms

from .services import COMMENT_MAX, SplitMode


class AnyValueMultipleChoiceField(forms.MultipleChoiceField):
    """Offers its choices but passes any posted value on, so the service can say what is wrong with
    it (a pack that does not match, a unit ID already removed) instead of "not one of the choices"."""

    def valid_value(self, value):
        return True


class SplitForm(forms.Form):
    mode = forms.ChoiceField(
        label="Split off",
        choices=SplitMode.CHOICES,
        widget=forms.RadioSelect,
        initial=SplitMode.COUNT,
        error_messages={
            "required": "Choose what to split off: a number of slots or only the empty slots.",
            "invalid_choice": "Split off %(value)r is not one of the choices.",
        },
    )
    count = forms.CharField(
        label="Number of slots", required=False, widget=forms.NumberInput(attrs={"min": 1})
    )

    def clean_count(self):
        value = self.cleaned_data["count"].strip()
        if not value:
            return None
        # digits 0-9 only: int() would also take "١٢" (Arabic-Indic digits) and "1_000"
        if not re.fullmatch(r"-?[0-9]+", value):
            raise forms.ValidationError(f"Number of slots must be a whole number, not {value!r}.")
        return int(value)

    def clean(self):
        data = super().clean()
        if data.get("mode") == SplitMode.COUNT and data.get("count") is None and "count" not in self.errors:
            self.add_error("count", "Enter the number of slots to split off.")
        return data


class MergeForm(forms.Form):
    packs = AnyValueMultipleChoiceField(
        label="Packs to merge into this one", required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, candidates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["packs"].choices = [
            (p.pack_id, f"{p.pack_id}: {p.total_licenses} licenses, {p.used} used") for p in candidates
        ]


class RemoveHardwareForm(forms.Form):
    # The unit IDs are ticked in the license table of the page.
    unit_ids = AnyValueMultipleChoiceField(label="Unit IDs", required=False, widget=forms.MultipleHiddenInput)
    accept_terms = forms.BooleanField(
        label="I accept the terms and conditions of removing hardware", required=False, label_suffix=""
    )


class CommentForm(forms.Form):
    comment = forms.CharField(
        label="Comment",
        required=False,
        widget=forms.Textarea(
            # fits a phone screen (portal.css sizes no textarea)
            attrs={"rows": 3, "cols": 60, "maxlength": COMMENT_MAX, "style": "width:100%;max-width:40rem"}
        ),
    )


class AcceptEulaForm(forms.Form):
    """Nothing to fill in: the button is the acceptance. Refusals show as form errors."""
