"""Staff pages about creators: who they are, what the platform owes them, their payouts."""
