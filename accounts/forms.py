from django import forms

from accounts.models import ApiKeyScope
from tenants.models import FailureMode


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, initial="Server key")
    scopes = forms.MultipleChoiceField(
        choices=ApiKeyScope.choices, widget=forms.CheckboxSelectMultiple, initial=list(ApiKeyScope.values)
    )


class TenantSettingsForm(forms.Form):
    rate_limit_failure_mode = forms.ChoiceField(
        choices=FailureMode.choices,
        widget=forms.RadioSelect,
        label="When Redis is unreachable, rate limits",
        help_text="Feature checks and limits keep answering from PostgreSQL either way.",
    )
