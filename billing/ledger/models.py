"""The double-entry ledger: accounts, journal transactions and their entries, running balances.

Sign convention: an entry's `amount` is signed integer minor units, debit positive, credit
negative. The entries of a transaction sum to zero in each currency. An account's balance is the sum
of its entries, so an asset or expense account normally has a positive balance and a liability,
revenue or equity account a negative one (`receivable` +1000 is owed to us; `deferred_revenue`
-1000 is what we owe as service).

The database enforces it (migration 0001): a deferred constraint trigger refuses at commit a
transaction whose entries do not sum to zero per currency or that has fewer than two entries;
transactions and entries are append-only (UPDATE and DELETE refused); corrections are reversing
transactions.
"""

import pgtrigger
from django.db import models
from django.db.models import Q


class AccountKind(models.TextChoices):
    ASSET = "asset", "Asset"
    LIABILITY = "liability", "Liability"
    REVENUE = "revenue", "Revenue"
    EXPENSE = "expense", "Expense"
    EQUITY = "equity", "Equity"


class LedgerAccount(models.Model):
    """One account of the tenant's chart (`cash:stripe`, `receivable`, `payable:creator:<handle>`),
    created on first use from the chart (billing.ledger.chart). Currency-agnostic: it holds a
    balance per currency (AccountBalance)."""

    code = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=10, choices=AccountKind.choices)
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(code__regex=r"^[a-z0-9_]+(:[a-z0-9_.-]+)*$"), name="ledger_account_code"
            ),
        ]

    def __str__(self) -> str:
        return self.code


@pgtrigger.register(
    pgtrigger.Protect(name="ledger_transaction_no_update", operation=pgtrigger.Update),
    pgtrigger.Protect(name="ledger_transaction_no_delete", operation=pgtrigger.Delete),
)
class JournalTransaction(models.Model):
    """One posting: entries that sum to zero per currency, unique per (source, source_id) so a
    replayed event posts nothing. Append-only; `reverses` names the transaction this one negates
    (at most one reversal each)."""

    source = models.CharField(max_length=40)
    source_id = models.CharField(max_length=255)
    description = models.CharField(max_length=300, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "source_id"], name="ledger_transaction_source"),
        ]
        indexes = [models.Index(fields=["occurred_at", "id"], name="ledger_transaction_occurred")]

    def __str__(self) -> str:
        return f"{self.source}:{self.source_id}"


@pgtrigger.register(
    pgtrigger.Protect(name="ledger_entry_no_update", operation=pgtrigger.Update),
    pgtrigger.Protect(name="ledger_entry_no_delete", operation=pgtrigger.Delete),
)
class JournalEntry(models.Model):
    """One line of a transaction: `amount` minor units of `currency` on `account`, debit positive,
    credit negative, never zero. `balance_after` is the account's balance in that currency after
    this entry, in posting order; `occurred_at` is the transaction's (for balances at a date)."""

    transaction = models.ForeignKey(JournalTransaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_entry_amount_non_zero"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[a-z]{3}$"), name="ledger_entry_currency"),
        ]
        indexes = [
            models.Index(fields=["account", "currency", "occurred_at"], name="ledger_entry_account_at"),
            models.Index(fields=["account", "-id"], name="ledger_entry_account_id"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount} {self.currency}"


class AccountBalance(models.Model):
    """The running balance of one account in one currency: updated under its row lock in the
    transaction of each posting, so it always equals the sum of the account's entries."""

    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="balances")
    currency = models.CharField(max_length=3)
    balance = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account_id", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["account", "currency"], name="ledger_balance_account_currency"),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[a-z]{3}$"), name="ledger_balance_currency"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.balance} {self.currency}"


class DailyTotal(models.Model):
    """What one UTC day's postings from one source (`payment`, `invoice`, …) moved on one account in
    one currency: `debits`, the sum of those entries' positive amounts, and `credits`, the sum of
    their negative ones (<= 0). Written with the entries in the transaction of each posting, under
    the account balance's row lock (services._write_entries), so it always equals those sums; a
    report over days reads a row per account and day instead of every entry."""

    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="+", db_index=False)
    currency = models.CharField(max_length=3)
    source = models.CharField(max_length=40)
    day = models.DateField()
    debits = models.BigIntegerField(default=0)
    credits = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["day", "source", "account_id", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "day", "account", "currency"], name="ledger_daily_total_key"
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[a-z]{3}$"), name="ledger_daily_total_currency"
            ),
            models.CheckConstraint(
                condition=Q(debits__gte=0, credits__lte=0), name="ledger_daily_total_signs"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.source} {self.account_id} +{self.debits} {self.credits} {self.currency}"


class RecognitionSchedule(models.Model):
    """How one invoice line's share of the deferred revenue its invoice posted is recognized: `amount`
    (less what credit notes took back unrecognized) from `basis_start` to `period_end`, straight-line
    and cumulative (billing.ledger.recognition). `recognized` (never above `amount`) is what the daily
    runs posted through `recognized_through`; `base` is what was recognized when the basis last
    moved (a credit note re-spreads the remainder from there)."""

    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.PROTECT, related_name="+")
    line = models.ForeignKey(
        "invoicing.InvoiceLine", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    recognized = models.BigIntegerField(default=0)
    base = models.BigIntegerField(default=0)
    basis_start = models.DateTimeField()
    period_end = models.DateTimeField()
    recognized_through = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "line"], name="ledger_recognition_line", nulls_distinct=False
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0)
                & Q(recognized__gte=0)
                & Q(recognized__lte=models.F("amount"))
                & Q(base__gte=0)
                & Q(base__lte=models.F("recognized")),
                name="ledger_recognition_amounts",
            ),
        ]
        indexes = [
            models.Index(
                fields=["basis_start"],
                condition=Q(recognized__lt=models.F("amount")),
                name="ledger_recognition_open",
            ),
            models.Index(fields=["invoice"], name="ledger_recognition_invoice"),
        ]

    def __str__(self) -> str:
        return f"invoice {self.invoice_id} line {self.line_id}: {self.recognized}/{self.amount}"


class RecognitionRun(models.Model):
    """One day's recognition, claimed before it runs: unique per day, so a re-run or a concurrent run
    of the same day posts nothing. `transaction` is its journal posting (None: nothing was due)."""

    day = models.DateField(unique=True)
    transaction = models.OneToOneField(
        JournalTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lines = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"recognition {self.day}"
