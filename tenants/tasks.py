from celery import shared_task

from tenants.services import spares_refill


@shared_task(name="tenants.spares_refill", acks_late=True)
def spares_refill_task() -> int:
    """Keep TENANT_SPARE_SCHEMAS pre-cloned schemas ready for tenant creation (public schema)."""
    return spares_refill()
