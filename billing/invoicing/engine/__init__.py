"""Our subscription engine for providers that only charge a saved payment method (see core.py; changes.py:
cancel, pause, change);
each provider's way of saving the method is its own module (toss.py, stripe.py)."""

from billing.invoicing.engine.changes import (
    charge_owner,
    subscription_cancel,
    subscription_change,
    subscription_pause,
    subscription_uncancel,
)
from billing.invoicing.engine.charging import charges_due_run

__all__ = [
    "charge_owner",
    "charges_due_run",
    "subscription_cancel",
    "subscription_change",
    "subscription_pause",
    "subscription_uncancel",
]
