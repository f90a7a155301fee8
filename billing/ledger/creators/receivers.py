"""What creators do when the apps below announce something (connected in CreatorsConfig.ready)."""

from __future__ import annotations


def on_payment_recorded(sender, *, payment, charge=None, **kwargs) -> None:
    """A paid charge for a creator (a tip, a creator tier's invoice) is split into an earning; a
    refund or lost dispute of one takes its share back. Inside the transaction that recorded it."""
    from billing.ledger.creators.earnings import earning_from_payment

    earning_from_payment(payment=payment, charge=charge, checkout_id=kwargs.get("checkout_id") or "")


def on_clock_changed(sender, **kwargs) -> None:
    """The sandbox clock moved: sandbox earnings whose hold ended become available."""
    from billing.ledger.creators.earnings import earnings_release

    earnings_release(provider="sandbox")


def on_provider_account(sender, *, provider, account, occurred_at=None, **kwargs) -> bool:
    """A provider reported a creator's connected account (Stripe's `account.updated`)."""
    from billing.ledger.creators.services import creator_account_update

    updated = creator_account_update(
        provider=provider, account_id=account.account_id, status=account.status, occurred_at=occurred_at
    )
    return updated is not None


def on_provider_payout(sender, *, provider, payout, occurred_at=None, **kwargs) -> bool:
    """A provider reported a payout to a creator's connected account (Stripe's `payout.paid`)."""
    from billing.ledger.creators.payouts import payout_reported

    return payout_reported(provider=provider, report=payout) is not None
