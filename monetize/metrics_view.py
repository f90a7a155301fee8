"""`/metrics` for Prometheus, on the operator's bare host only.

Under gunicorn every worker is its own process: set PROMETHEUS_MULTIPROC_DIR (an empty directory,
`make run` uses .data/prometheus) so prometheus-client aggregates all workers; without it the
endpoint shows the answering process only.
"""

import os

from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

import kernel.metrics  # noqa: F401  (creates the series at zero: a first scrape is never empty)


def metrics(request):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
