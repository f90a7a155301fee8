"""Stripe Connect Express for creators' payouts (a mixin of StripeProvider): the connected account
is made once (idempotency key from our creator's row id), then an Account Link sends the creator
to Stripe's hosted onboarding. Stripe reports what the account may do in `account.updated`."""

from __future__ import annotations

from billing.providers.base import (
    ConnectedAccountState,
    ConnectOnboarding,
    ConnectOnboardingRequest,
    PayoutReport,
    ProviderError,
    Transfer,
    TransferResult,
)


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

    def transfer(self, transfer: Transfer) -> TransferResult:
        """A Transfer from the platform's balance to the connected account (idempotency key
        `payout-<id>`), then a Payout of it from that account to the creator's bank (key
        `payout-<id>-payout`, on the account); Stripe reports the payout's fate in `payout.paid` /
        `payout.failed` (Connect events, carrying our metadata `monetize_payout`)."""
        client = self._client()
        metadata = {"monetize_payout": transfer.transfer_id}
        moved = self._call(
            client.v1.transfers.create,
            params={
                "amount": transfer.amount, "currency": transfer.currency, "destination": transfer.account_id,
                "metadata": metadata, **({"description": transfer.description} if transfer.description else {}),
            },
            options={"idempotency_key": transfer.transfer_id},
        )  # fmt: skip
        payout = self._call(
            client.v1.payouts.create,
            params={"amount": transfer.amount, "currency": transfer.currency, "metadata": metadata},
            options={
                "idempotency_key": f"{transfer.transfer_id}-payout",
                "stripe_account": transfer.account_id,
            },
        )
        status = getattr(payout, "status", "")
        if status in ("failed", "canceled"):
            raise ProviderError(
                f"Stripe did not pay out {transfer.transfer_id} ({status}).", code="payout_failed"
            )
        return TransferResult(
            transfer_id=str(moved.id),
            payout_id=str(payout.id),
            status="paid" if status == "paid" else "processing",
        )


def stripe_payout_report(obj: dict, *, account: str = "") -> PayoutReport:
    """A Payout object (a Connect event's) as our report: paid, or failed (canceled too)."""
    status = {"paid": "paid", "failed": "failed", "canceled": "failed"}.get(str(obj.get("status") or ""), "")
    return PayoutReport(
        payout_id=str(obj.get("id") or ""),
        status=status,
        account_id=account,
        reference=str((obj.get("metadata") or {}).get("monetize_payout") or ""),
        failure_message=str(obj.get("failure_message") or obj.get("failure_code") or ""),
    )


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
