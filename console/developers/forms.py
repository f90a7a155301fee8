"""The Developers page's forms: they turn any query string or POST into clean values or readable
errors (a hostile input is a form error, never a 500)."""

from __future__ import annotations

from django import forms
from django.core.validators import URLValidator

from billing.events.api import EVENT_TYPES
from billing.events.models import DeliveryStatus
from billing.inbox.models import InboxStatus

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class EndpointCreateForm(forms.Form):
    url = forms.URLField(
        max_length=2000,
        label="Endpoint URL",
        validators=[URLValidator(schemes=["https", "http"])],
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks/monetize"}),
    )
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        choices=[(name, name) for name in EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None checked: every event type.",
    )


class _Filter(forms.Form):
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)

    def values(self) -> dict:
        """The valid filters (an invalid one is dropped; its error is shown beside the form)."""
        self.is_valid()
        return {
            name: value
            for name, value in getattr(self, "cleaned_data", {}).items()
            if value not in (None, "")
        }


class DeliveryFilterForm(_Filter):
    status = forms.ChoiceField(choices=[("", "Any status"), *DeliveryStatus.choices], required=False)


class InboxFilterForm(_Filter):
    provider = forms.ChoiceField(required=False)
    status = forms.ChoiceField(choices=[("", "Any status"), *InboxStatus.choices], required=False)
    event_type = forms.CharField(required=False, max_length=100, label="Type")
    received_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    received_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, providers: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", "Any provider"), *((name, name) for name in providers)]

    def clean(self):
        data = super().clean()
        start, end = data.get("received_from"), data.get("received_to")
        if start and end and end < start:
            self.add_error("received_to", "“To” is before “From”.")
        return data


class ExplorerFilterForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=[("", "All calls"), ("ok", "Succeeded (2xx/3xx)"), ("error", "Failed (4xx/5xx)")],
        required=False,
    )
    method = forms.ChoiceField(choices=[("", "Any method"), *((m, m) for m in HTTP_METHODS)], required=False)
    customer = forms.CharField(required=False, max_length=255, label="Usage of customer")

    def values(self) -> dict:
        self.is_valid()
        return {name: value for name, value in getattr(self, "cleaned_data", {}).items() if value}
