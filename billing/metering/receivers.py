"""A customer whose membership changed gets the new tier's credit allowance for the period within
seconds, from the housekeeping worker (the hourly job would grant it within the hour anyway)."""

import logging

logger = logging.getLogger(__name__)


def on_membership_changed(
    sender, external_id: str | None, external_ids=None, committed: bool = False, **kwargs
) -> None:
    # memberships send this inside their transaction and again once it committed: act on the
    # second, so a failure here can never roll a membership change back. The grant is a task, not
    # inline: it is not on the path of whatever changed the membership (a provider event applied
    # by the inbox worker spent a sixth of its time here)
    if not committed:
        return
    # (a batch of changes, the inbox applying a burst of provider events: one task for all of them)
    from billing.metering.credits_tasks import credits_allowance_for_many_task, credits_allowance_for_task

    try:
        if external_ids is None:
            credits_allowance_for_task.delay(external_id)
        elif external_ids:
            credits_allowance_for_many_task.delay(list(external_ids))
    except Exception:  # broker down: the hourly job grants it
        logger.warning(
            "could not enqueue the allowance of %s; the hourly job will",
            external_id or external_ids,
            exc_info=True,
        )
