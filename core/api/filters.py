import django_filters
from django import forms


class CommaMultipleChoiceField(forms.MultipleChoiceField):
    """Accepts `status=a&status=b` and `status=a,b` alike."""

    def to_python(self, value):
        values = super().to_python(value)
        return [part.strip() for item in values for part in item.split(",") if part.strip()]


class MultipleChoiceFilter(django_filters.MultipleChoiceFilter):
    field_class = CommaMultipleChoiceField
