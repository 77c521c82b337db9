import copy

import django_filters
from django import forms
from django_filters.filters import FilterMethod
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.widgets import QueryArrayWidget


class CommaMultipleChoiceField(forms.MultipleChoiceField):
    """Accepts `status=a&status=b` and `status=a,b` alike."""

    def to_python(self, value):
        values = super().to_python(value)
        return [part.strip() for item in values for part in item.split(",") if part.strip()]


class MultipleChoiceFilter(django_filters.MultipleChoiceFilter):
    field_class = CommaMultipleChoiceField


class StringListField(forms.Field):
    widget = QueryArrayWidget

    def __init__(self, *args, max_length: int = 200, **kwargs):
        self.max_length = max_length
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        values = [part.strip() for item in (value or []) for part in str(item).split(",") if part.strip()]
        if any(len(item) > self.max_length for item in values):
            raise forms.ValidationError(f"Each value must be at most {self.max_length} characters.")
        return values


class StringListFilter(django_filters.Filter):
    """Free-form values, `x=a&x=b` or `x=a,b`, matched exactly."""

    field_class = StringListField

    def filter(self, queryset, value):
        return queryset.filter(**{f"{self.field_name}__in": value}) if value else queryset


class _SharedFields(dict):
    """A filter form's `base_fields`, which Django deep-copies into every form (0.15 ms a list request,
    widgets and validators included) so that a form may change its own fields. Filter forms never do,
    and cleaning a value reads a field without changing it, so every form uses the same fields. Except a
    model choice field: its queryset caches its rows, so each form gets its own, as in Django."""

    def __deepcopy__(self, memo):
        return {
            name: copy.deepcopy(field, memo) if isinstance(field, forms.ModelChoiceField) else field
            for name, field in self.items()
        }


class _Filters(dict):
    """A FilterSet's `base_filters`, which django-filter deep-copies for every filterset (every list
    request: 0.1 ms, their form fields and widgets included) so that each filter gets the instance as
    its `parent`. A shallow copy of each filter does that too: the form field a filter builds is the same
    for every request (forms are made from the form class's fields, `_SharedFields`), only `parent`
    differs, and a `method` filter's proxy is bound to its own copy, as the deep copy would."""

    def __deepcopy__(self, memo):
        copies = {}
        for name, original in self.items():
            copies[name] = clone = copy.copy(original)
            if isinstance(original.__dict__.get("filter"), FilterMethod):
                clone.filter = FilterMethod(clone)
        return copies


class FilterSet(django_filters.FilterSet):
    """django-filter's FilterSet with its form class made once per class.

    django-filter builds a new form class (a `type()` call and Django's form metaclass) for every
    filterset, that is on every list request: 1.6 ms of CPU each in a profile of the runs list. Our
    filters' fields depend on nothing but the class (no querysets read per request), so one class
    serves every request, and its forms share its fields (`_SharedFields`)."""

    _form_classes: dict[type, type] = {}

    @classmethod
    def get_filters(cls):
        return _Filters(super().get_filters())

    def get_form_class(self):
        cls = type(self)
        form_class = FilterSet._form_classes.get(cls)
        if form_class is None:
            form_class = super().get_form_class()
            form_class.base_fields = _SharedFields(form_class.base_fields)
            FilterSet._form_classes[cls] = form_class
        return form_class


class FilterBackend(DjangoFilterBackend):
    """Keeps the filterset it applied on the view, so the page's count reads its cleaned values
    instead of validating the query again (runs/api/pagination.py)."""

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        view.applied_filterset = filterset
        return filterset


class SoftDeleteFilterSet(FilterSet):
    """`name` (case-insensitive substring) and `status` for resources that are soft deleted:
    without a status filter, deleted rows stay hidden (the model's `live()`). Subclasses set Meta.model
    and `status`."""

    name = django_filters.CharFilter(
        field_name="name", lookup_expr="icontains", max_length=255, help_text="Case-insensitive substring of the name."
    )

    def filter_status(self, queryset, name, value):
        return queryset.filter(status__in=value) if value else queryset

    @property
    def qs(self):
        queryset = super().qs
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.live()
        return queryset
