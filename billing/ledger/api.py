"""Ledger API (read-only): accounts with their balances per currency (now or `?at=`), and the
journal's transactions with their entries. Amounts are signed minor units, debit positive."""

from __future__ import annotations

import datetime as dt
from functools import partial

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.ledger.exceptions import LedgerQueryInvalid
from billing.ledger.models import AccountKind
from billing.ledger.selectors import (
    ledger_account_list,
    ledger_balances,
    ledger_transaction_get,
    ledger_transaction_list,
)
from kernel.api.pagination import PAGE_PARAMETERS, page_schema, paginated_response
from kernel.timestamps import TimestampError, timestamp_parse

BAD_QUERY = OpenApiResponse(description="invalid_ledger_query")


def _time(params, key: str) -> dt.datetime | None:
    raw = params.get(key)
    if not raw:
        return None
    try:
        return timestamp_parse(raw.replace(" ", "+"))  # a '+' in a query string arrives as ' '
    except TimestampError as exc:
        raise LedgerQueryInvalid(f"'{key}': {exc.message}", details={"field": key}) from None


class BalanceOutput(serializers.Serializer):
    currency = serializers.CharField()
    balance = serializers.IntegerField(help_text="Signed minor units: debit positive, credit negative.")


class AccountOutput(serializers.Serializer):
    code = serializers.CharField(help_text="`cash:<provider>`, `receivable`, `payable:creator:<handle>`, …")
    kind = serializers.ChoiceField(choices=AccountKind.choices)
    name = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    balances = serializers.SerializerMethodField()

    @extend_schema_field(BalanceOutput(many=True))
    def get_balances(self, account) -> list[dict]:
        balances = self.context["balances"].get(account.pk, {})
        return [{"currency": currency, "balance": balances[currency]} for currency in sorted(balances)]


class LedgerAccountListView(APIView):
    """The tenant's ledger accounts by code, each with its balance in every currency it holds: now,
    or at `at` (the entries dated after it taken out)."""

    @extend_schema(
        operation_id="ledger_accounts_list",
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter(
                "at", dt.datetime, description="RFC 3339: balances at that moment (default now)."
            ),
        ],
        responses={200: page_schema("LedgerAccountPage", AccountOutput), 400: BAD_QUERY},
    )
    def get(self, request):
        at = _time(request.query_params, "at")
        output = partial(AccountOutput, context={"balances": ledger_balances(at=at)})
        return paginated_response(
            request=request,
            view=self,
            queryset=ledger_account_list(),
            serializer_class=output,
            ordering="code",
        )


class EntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    account = serializers.CharField(source="account.code")
    currency = serializers.CharField()
    amount = serializers.IntegerField(help_text="Signed minor units: debit positive, credit negative.")
    balance_after = serializers.IntegerField(help_text="The account's balance in this currency after it.")


class TransactionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField(help_text="`invoice`, `payment`, `reversal`, …")
    source_id = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    occurred_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    reverses = serializers.IntegerField(source="reverses_id", allow_null=True)
    reversed_by = serializers.SerializerMethodField()
    metadata = serializers.DictField()
    entries = EntryOutput(many=True)

    def get_reversed_by(self, txn) -> int | None:
        reversal = getattr(txn, "reversed_by", None)
        return reversal.pk if reversal is not None else None


class LedgerTransactionListView(APIView):
    """Journal transactions, newest first, with their entries; filtered by an account they touch,
    their source, and `from` (inclusive) / `to` (exclusive) on when they occurred."""

    @extend_schema(
        operation_id="ledger_transactions_list",
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("account", str, description="An account code: transactions that touch it."),
            OpenApiParameter("source", str, description="`invoice`, `payment`, `reversal`, …"),
            OpenApiParameter("from", dt.datetime, description="RFC 3339: occurred at or after."),
            OpenApiParameter("to", dt.datetime, description="RFC 3339: occurred before."),
        ],
        responses={200: page_schema("LedgerTransactionPage", TransactionOutput), 400: BAD_QUERY},
    )
    def get(self, request):
        params = request.query_params
        start, end = _time(params, "from"), _time(params, "to")
        if start is not None and end is not None and end <= start:
            raise LedgerQueryInvalid("'to' must be after 'from'.", details={"field": "to"})
        queryset = (
            ledger_transaction_list(
                account=params.get("account") or None,
                source=params.get("source") or None,
                occurred_from=start,
                occurred_to=end,
            )
            .select_related("reversed_by")
            .prefetch_related("entries__account")
        )
        return paginated_response(
            request=request, view=self, queryset=queryset, serializer_class=TransactionOutput
        )


class LedgerTransactionDetailView(APIView):
    @extend_schema(
        operation_id="ledger_transactions_get",
        responses={200: TransactionOutput, 404: OpenApiResponse(description="unknown_transaction")},
    )
    def get(self, request, transaction_id: int):
        return Response(TransactionOutput(ledger_transaction_get(transaction_id=transaction_id)).data)
