from django import forms

from accounts.models import ApiKeyScope
from tenants.models import FailureMode, UnknownUsageCustomer


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
    unknown_usage_customer = forms.ChoiceField(
        choices=UnknownUsageCustomer.choices,
        widget=forms.RadioSelect,
        label="A usage event for a customer id we do not know",
        help_text="Rejected events are listed in the ingestion answer; created customers start on the default tier.",
        required=False,  # left out: unchanged
    )

    invoice_address = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=500,
        required=False,
        label="Billing address on invoices",
        help_text="Printed under your business's name on every invoice PDF.",
    )

    sandbox_fee_bps = forms.IntegerField(
        min_value=0,
        max_value=10_000,
        required=False,  # left out: unchanged
        label="Sandbox provider fee (basis points)",
        help_text="What the sandbox keeps of each charge, as a real provider would (290 = 2.9 %); 0 for none.",
    )

    logo = forms.FileField(
        required=False,
        label="Logo on invoices",
        help_text="PNG, JPEG, GIF or WebP up to 1 MB; printed at the top of every invoice PDF.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}),
    )
    logo_remove = forms.BooleanField(required=False, label="Remove the logo")

    creator_fee_bps = forms.IntegerField(
        min_value=0, max_value=10_000, required=False, label="Platform fee on creators' sales and tips (basis points)",
        help_text="1000 = 10 %. Applies to earnings from now on; past earnings keep their rate.",
    )  # fmt: skip
    earnings_hold_days = forms.IntegerField(
        min_value=0, max_value=365, required=False, label="Days an earning is held before it is available"
    )
    tip_min_amount = forms.IntegerField(min_value=0, required=False, label="Smallest tip (minor units)")
    tip_max_amount = forms.IntegerField(min_value=0, required=False, label="Largest tip (minor units)")

    payout_min_amount = forms.IntegerField(
        min_value=1, required=False, label="Smallest payout to a creator (minor units)",
        help_text="Requests below it are refused; scheduled runs skip smaller balances.",
    )  # fmt: skip
    payout_schedule = forms.ChoiceField(
        choices=[("manual", "Manual (creators request)"), ("weekly", "Weekly, on Mondays"),
                 ("monthly", "Monthly, on the 1st")],
        required=False, label="Creators are paid out",
    )  # fmt: skip

    brand_color = forms.RegexField(
        regex=r"^#[0-9a-fA-F]{6}$", required=False, label="Brand colour",
        widget=forms.TextInput(attrs={"placeholder": "#2563eb", "pattern": "#[0-9a-fA-F]{6}", "size": 8}),
        error_messages={"invalid": "A colour is #RRGGBB (six hex digits)."},
        help_text="Buttons and links on your pages and the hosted checkout.",
    )  # fmt: skip
    support_email = forms.EmailField(
        required=False, label="Support email",
        help_text="Shown on your pages; replies to your emails go there. Leave empty for none.",
    )  # fmt: skip

    def clean_payout_schedule(self):
        return self.cleaned_data["payout_schedule"] or None

    def clean(self):
        data = super().clean()
        low, high = data.get("tip_min_amount"), data.get("tip_max_amount")
        if low is not None and high is not None and low > high:
            self.add_error("tip_min_amount", "The smallest tip is above the largest.")
        return data

    def clean_unknown_usage_customer(self):
        return self.cleaned_data["unknown_usage_customer"] or None
