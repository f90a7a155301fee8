"""Stripe Connect Express for creators' payouts (a mixin of StripeProvider): the connected account
is made once (idempotency key from our creator's row id), then an Account Link sends the creator
to Stripe's hosted onboarding. Stripe reports what the account may do in `account.updated`."""

from __future__ import annotations

from billing.providers.base import ConnectedAccountState, ConnectOnboarding, ConnectOnboardingRequest


class StripeConnect:
    def connect_onboarding(self, request: ConnectOnboardingRequest) -> ConnectOnboarding:
        client = self._client()
        account_id = request.account_id
        if not account_id:
            params = {
                "type": "express",
                "metadata": {"monetize_creator": request.creator},
                "business_profile": {"name": request.display_name[:100]},
                "capabilities": {"transfers": {"requested": True}},
                **({"email": request.email} if request.email else {}),
            }
            account_id = self._call(
                client.v1.accounts.create, params=params, options={"idempotency_key": request.creator_key}
            ).id
        link = self._call(
            client.v1.account_links.create,
            params={
                "account": account_id,
                "type": "account_onboarding",
                "return_url": request.return_url,
                "refresh_url": request.refresh_url,
            },
        )
        return ConnectOnboarding(account_id=str(account_id), url=str(link.url))


def stripe_account_state(obj: dict) -> ConnectedAccountState:
    """An Account object as our payout status: active once Stripe enables charges and payouts,
    restricted while it names a reason the account is disabled, else pending (details due)."""
    requirements = obj.get("requirements") or {}
    if obj.get("charges_enabled") and obj.get("payouts_enabled"):
        status = "active"
    elif requirements.get("disabled_reason") and obj.get("details_submitted"):
        status = "restricted"
    else:
        status = "pending"
    return ConnectedAccountState(
        account_id=str(obj.get("id") or ""),
        status=status,
        creator=str((obj.get("metadata") or {}).get("monetize_creator") or ""),
    )
