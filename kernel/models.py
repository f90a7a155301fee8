from django.db import models


class DeferredInvalidation(models.Model):
    """A cache invalidation Redis did not take (down, stalled, breaker open), kept in the public
    schema until kernel.invalidations.replay() has applied it. One row per (schema, kind, ident):
    repeating a failed invalidation adds nothing."""

    schema_name = models.CharField(max_length=63)
    kind = models.CharField(max_length=16)  # a handler registered in kernel.invalidations
    ident = models.CharField(max_length=255, blank=True)  # a customer id or a key hash; "" for "all"
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["schema_name", "kind", "ident"], name="deferred_invalidation_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.schema_name}:{self.kind}:{self.ident}"
