from django import forms
from django.contrib import admin

from billing.memberships.models import Customer, Membership
from billing.memberships.selectors import customer_tier
from billing.memberships.services import membership_set_tier
from billing.tiers.models import Tier


class CustomerForm(forms.ModelForm):
    tier = forms.ModelChoiceField(
        Tier.objects.all(),
        required=False,
        help_text="Changing it puts the customer on that tier now, without a payment.",
    )

    class Meta:
        model = Customer
        fields = ["external_id", "email", "name", "metadata", "country", "tax_exempt", "user"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["tier", "status", "provider", "quantity", "started_at", "current_period_end", "ended_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerForm
    list_display = ["external_id", "email", "name", "created_at"]
    search_fields = ["external_id", "email", "name"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user"]

    inlines = [MembershipInline]  # entitlements adds its overrides (billing/entitlements/admin.py)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None:
            form.base_fields["tier"].initial = customer_tier(customer=obj)
        return form

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        tier = form.cleaned_data.get("tier")
        if tier is not None and tier != customer_tier(customer=obj):
            membership_set_tier(customer=obj, tier=tier)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["customer", "tier", "status", "provider", "started_at", "current_period_end"]
    list_filter = ["status", "provider", "tier"]
    search_fields = ["customer__external_id", "customer__email"]
    readonly_fields = [f.name for f in Membership._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
