from django import forms

from accounts.models import ApiKeyScope


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, initial="Server key")
    scopes = forms.MultipleChoiceField(
        choices=ApiKeyScope.choices, widget=forms.CheckboxSelectMultiple, initial=list(ApiKeyScope.values)
    )
