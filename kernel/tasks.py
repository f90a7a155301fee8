from celery import shared_task

from kernel.invalidations import replay


@shared_task(name="kernel.invalidations_replay", acks_late=True, ignore_result=True)
def invalidations_replay() -> int:
    return replay()
