import json

from django import forms
from django.contrib import admin

from billing.providers.models import ProviderAccount, ProviderDiscount, ProviderProduct


class ProviderAccountForm(forms.ModelForm):
    """Secrets are write-only: stored encrypted, never shown back (blank keeps the current ones)."""

    credentials = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text='JSON, e.g. {"api_key": "sk_test_…"}.',
    )
    webhook_secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False), required=False,
        help_text="The provider's webhook signing secret (the sandbox generates one when empty).",
    )  # fmt: skip

    class Meta:
        model = ProviderAccount
        fields = ["provider", "mode", "is_default"]

    def clean_credentials(self):
        raw = self.cleaned_data["credentials"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("Must be a JSON object.")
        return value


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    form = ProviderAccountForm
    list_display = ["provider", "mode", "is_default", "has_credentials", "has_webhook_secret", "updated_at"]

    def save_model(self, request, obj, form, change):
        from billing.providers.services import provider_account_upsert

        saved = provider_account_upsert(
            provider=obj.provider,
            mode=obj.mode,
            credentials=form.cleaned_data.get("credentials"),
            webhook_secret=form.cleaned_data.get("webhook_secret") or None,
            make_default=obj.is_default,
        )
        obj.pk = saved.pk

    @admin.display(boolean=True)
    def has_credentials(self, obj):
        return bool(obj.credentials_encrypted)

    @admin.display(boolean=True)
    def has_webhook_secret(self, obj):
        return bool(obj.webhook_secret_encrypted)


@admin.register(ProviderProduct)
class ProviderProductAdmin(admin.ModelAdmin):
    """Created by the adapters that can create products (Polar); entered here for those that cannot."""

    list_display = ["provider", "mode", "price", "external_product_id", "external_price_id", "created_at"]
    list_filter = ["provider", "mode"]
    raw_id_fields = ["price"]


@admin.register(ProviderDiscount)
class ProviderDiscountAdmin(admin.ModelAdmin):
    """Our coupons as provider discounts, created by the adapters on a coupon's first checkout."""

    list_display = ["provider", "mode", "coupon_code", "months", "external_id", "created_at"]
    list_filter = ["provider", "mode"]
    readonly_fields = ["provider", "mode", "coupon_code", "months", "external_id"]
