"""Filter fields both sides share."""

import django_filters
from django import forms


class DayField(forms.DateField):
    """A day as YYYY-MM-DD; a bad one is an error that repeats what was typed."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except forms.ValidationError:
            raise forms.ValidationError(
                "%(value)r is not a day; write it as YYYY-MM-DD.", code="invalid", params={"value": value}
            ) from None


class DayFilter(django_filters.DateFilter):
    field_class = DayField
