# Indexes for the staff overview's reads (console.overview), in SQL: the memberships models are left
# as they are (the models do not declare them, so makemigrations leaves them alone). Each tenant
# schema gets them by this migration; new tenants by the clone of the migrated template.

from django.db import migrations

INDEXES_SQL = """
-- the subscription figures walk each membership's history in (at, id) order (a window per
-- membership): read in that order, with the columns the window reads, no sort of every row
CREATE INDEX IF NOT EXISTS memberships_history_window
    ON memberships_membershiphistory (membership_id, at, id) INCLUDE (status, quantity);
-- failed charges (and any kind of payment) per day of a range
CREATE INDEX IF NOT EXISTS memberships_payment_kind_at ON memberships_payment (kind, occurred_at);
-- past-due memberships: how many, and the longest past due first
CREATE INDEX IF NOT EXISTS memberships_past_due_since
    ON memberships_membership (past_due_since, id) WHERE status = 'past_due';
"""

DROP_SQL = """
DROP INDEX IF EXISTS memberships_history_window;
DROP INDEX IF EXISTS memberships_payment_kind_at;
DROP INDEX IF EXISTS memberships_past_due_since;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("memberships", "0011_membership_owner"),
    ]

    operations = [migrations.RunSQL(INDEXES_SQL, DROP_SQL)]
