"""Our subscription engine for providers that only charge a saved payment method (see core.py);
each provider's way of saving the method is its own module (toss.py, stripe.py)."""

from billing.invoicing.engine.core import (
    charge_owner,
    charges_due_run,
    subscription_cancel,
    subscription_change,
    subscription_pause,
)

__all__ = [
    "charge_owner",
    "charges_due_run",
    "subscription_cancel",
    "subscription_change",
    "subscription_pause",
]
