"""Stripe's own books, for the ledger: the fee Stripe kept of a charge (its balance transaction's)
and the balance transactions of a window (reconciliation). A mixin of StripeProvider, which
provides `api_key`, `_client()` and `_call()`."""

from __future__ import annotations

import datetime as dt
import logging

from billing.providers._common import object_id as _id_of
from billing.providers._common import timestamp
from billing.providers.base import BalanceEntry, PaymentState, ProviderError, ProviderUnavailable

logger = logging.getLogger(__name__)


class StripeBalance:
    def payment_fee(self, payment: PaymentState) -> int | None:
        """What Stripe kept of a charge: its balance transaction's fee. A webhook names the charge
        (or only its payment intent), never the fee, so it is fetched: the charge, then its
        balance transaction. None when the account has no API key, Stripe has not settled the
        charge yet, the objects are gone (a 4xx), or the fee is in another currency than the
        charge (a converted charge: reconciliation reports it). Stripe not answering raises
        ProviderUnavailable: the inbox retries the event."""
        if not self.api_key:
            return None
        client = self._client()
        ids = (payment.reference, payment.intent, payment.payment_id)
        charge_id = next((ref for ref in ids if ref.startswith(("ch_", "py_"))), "")
        try:
            if not charge_id:
                intent_id = next((ref for ref in ids if ref.startswith("pi_")), "")
                if not intent_id:
                    return None
                intent = self._call(client.v1.payment_intents.retrieve, intent_id).to_dict()
                charges = ((intent.get("charges") or {}).get("data")) or []
                charge_id = _id_of(intent.get("latest_charge")) or (_id_of(charges[0]) if charges else "")
                if not charge_id:
                    return None
            charge = self._call(client.v1.charges.retrieve, charge_id).to_dict()
            txn = charge.get("balance_transaction")
            if not txn:
                return None
            txn = (
                txn
                if isinstance(txn, dict)
                else self._call(client.v1.balance_transactions.retrieve, str(txn)).to_dict()
            )
        except ProviderUnavailable:
            raise
        except ProviderError as exc:
            logger.warning("stripe fee of %s not found: %s", payment.payment_id, exc)
            return None
        if str(txn.get("currency", "")).lower() != payment.currency.lower():
            logger.warning(
                "stripe fee of %s is in %s, the charge in %s: not recorded",
                payment.payment_id, txn.get("currency"), payment.currency,
            )  # fmt: skip
            return None
        return int(txn.get("fee") or 0)

    def balance_transactions(self, *, since: dt.datetime, until: dt.datetime) -> list[BalanceEntry]:
        """Stripe's balance transactions created in [since, until): pages (newest first, as Stripe
        lists them) are read until one reaches past `since` (no `created` filter: localstripe
        refuses one, and Stripe lists newest first either way)."""
        client = self._client()
        found: list[BalanceEntry] = []
        after = None
        while True:
            # the source expanded: a charge names its payment intent, which is all that a one-time
            # purchase's payment (recorded from its checkout session) knows it by
            params = {"limit": 100, "expand": ["data.source"], **({"starting_after": after} if after else {})}
            page = self._call(client.v1.balance_transactions.list, params=params).to_dict()
            rows = page.get("data") or []
            for row in rows:
                created = timestamp(row.get("created"))
                if created is None or created >= until:
                    continue
                if created < since:
                    return found
                kind = str(row.get("type") or "")
                source = row.get("source")
                intent = _id_of(source.get("payment_intent")) if isinstance(source, dict) else ""
                found.append(
                    BalanceEntry(
                        entry_id=str(row["id"]),
                        type=kind if kind in ("charge", "payment", "refund", "adjustment") else "other",
                        source=_id_of(row.get("source")),
                        amount=int(row.get("amount") or 0),
                        fee=int(row.get("fee") or 0),
                        currency=str(row.get("currency") or "").lower(),
                        created=created,
                        related=(intent,) if intent and kind in ("charge", "payment") else (),
                    )
                )
            if not rows or not page.get("has_more"):
                return found
            after = rows[-1]["id"]
